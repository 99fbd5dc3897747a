"""What callers see of a stored schedule: its definition and run state.

The record layout is :mod:`scheduler.backend.schedule_record`.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from scheduler.backend.schedule_record import ScheduleStatus, StoredSchedule, parse_stored
from scheduler.cron.schedule import Schedule
from scheduler.timeutil import ms_to_datetime

__all__ = ["ScheduleInfo", "ScheduleStatus", "StoredSchedule", "parse_stored"]


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
    def decode(cls, stored: StoredSchedule, next_fire_ms: int | None) -> ScheduleInfo:
        """Combine a stored record and its ZSET score (None if absent).

        Raises:
            InvalidScheduleError: the definition cannot be decoded.
        """
        schedule = Schedule.from_json(
            stored.definition, paused=stored.status is ScheduleStatus.PAUSED
        )
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
