"""What callers see of a stored schedule: its definition and run state.

The record layout is :mod:`scheduler.backend.schedule_record`.
"""

from __future__ import annotations

import functools
from datetime import datetime

import attrs

from scheduler.backend.schedule_record import ScheduleStatus, StoredSchedule, parse_stored
from scheduler.cron.errors import DamagedScheduleError, InvalidScheduleError
from scheduler.cron.schedule import Schedule
from scheduler.timeutil import ms_to_datetime

__all__ = ["ScheduleInfo", "ScheduleStatus", "StoredSchedule", "decode_record", "parse_stored"]


@functools.lru_cache(maxsize=4096)
def _definition(text: str, paused: bool) -> Schedule:
    # Decoding builds and checks a croniter (~0.1 ms): a cron process firing
    # a thousand schedules a second decodes each definition once. Schedules
    # are immutable, so sharing them is safe.
    return Schedule.from_json(text, paused=paused)


def decode_record(queue: str, schedule_id: str, raw: str | None) -> tuple[StoredSchedule, Schedule]:
    """Decode the record stored under ``schedule_id`` in ``queue``'s hash.

    The one check of a stored schedule, shared by the cron runner, the
    store's reads and the CLI: a valid record (:func:`parse_stored`), a
    definition this version decodes, naming this very id and queue.

    Raises:
        DamagedScheduleError: ``raw`` is None, or any check fails (the
            reason says which).
    """
    if raw is None:
        raise DamagedScheduleError(schedule_id, queue, "in the cron set but has no record")
    try:
        stored = parse_stored(raw)
    except ValueError as exc:
        raise DamagedScheduleError(schedule_id, queue, f"bad record: {exc}") from None
    try:
        schedule = _definition(stored.definition, stored.status is ScheduleStatus.PAUSED)
    except InvalidScheduleError as exc:
        raise DamagedScheduleError(schedule_id, queue, f"bad definition: {exc}") from None
    if schedule.id != schedule_id or schedule.queue != queue:
        raise DamagedScheduleError(
            schedule_id,
            queue,
            f"its definition names schedule {schedule.id!r} in queue {schedule.queue!r}",
        )
    return stored, schedule


@attrs.frozen
class ScheduleInfo:
    """A schedule as stored in Redis, with its run state.

    Attributes:
        schedule: the definition.
        status: active, paused or ended.
        next_fire_ms: next fire time, ms (None when paused or ended).
        last_fire_ms: fire time of the last job enqueued, ms, or None.
        last_job_id: that job's id, or None.
        fired: jobs enqueued so far.
        missed: firings skipped or coalesced so far (see the misfire policy).
        created_ms, updated_ms: when first stored / last changed, ms.
    """

    schedule: Schedule
    status: ScheduleStatus
    next_fire_ms: int | None
    last_fire_ms: int | None
    last_job_id: str | None
    fired: int
    missed: int
    created_ms: int
    updated_ms: int

    @property
    def id(self) -> str:
        """The schedule id."""
        return self.schedule.id

    @property
    def queue(self) -> str:
        """The queue of the schedule and its jobs."""
        return self.schedule.queue

    @property
    def paused(self) -> bool:
        """True if paused."""
        return self.status is ScheduleStatus.PAUSED

    @property
    def next_fire(self) -> datetime | None:
        """Next fire time (aware UTC ``datetime``), or None."""
        return None if self.next_fire_ms is None else ms_to_datetime(self.next_fire_ms)

    @property
    def last_fire(self) -> datetime | None:
        """Fire time of the last job enqueued (aware UTC ``datetime``), or None."""
        return None if self.last_fire_ms is None else ms_to_datetime(self.last_fire_ms)

    @classmethod
    def decode(
        cls, queue: str, schedule_id: str, raw: str, next_fire_ms: int | None
    ) -> ScheduleInfo:
        """A stored record (see :func:`decode_record`) and its ZSET score
        (None if absent).

        Raises:
            DamagedScheduleError: the record cannot be used.
        """
        stored, schedule = decode_record(queue, schedule_id, raw)
        return cls(
            schedule=schedule,
            status=stored.status,
            next_fire_ms=next_fire_ms if stored.status is ScheduleStatus.ACTIVE else None,
            last_fire_ms=stored.last_fire_ms,
            last_job_id=stored.last_job_id,
            fired=stored.fired,
            missed=stored.missed,
            created_ms=stored.created_ms,
            updated_ms=stored.updated_ms,
        )
