"""The stored schedule record and what callers see of a schedule.

Each schedule is one entry of its queue's ``P:{Q}:schedules`` HASH (field =
schedule id), whose value holds the run state and the definition, joined by
``"\\x1f"`` like job records (``lua/lib/schedule.lua`` reads and writes the
same layout); its next fire time is its score in the ``P:{Q}:cron`` ZSET.
State and definition share one value so that every script reads and writes
a schedule with one HGET/HSET.

=====  ===========  ==========================================================
index  field        meaning
=====  ===========  ==========================================================
0      version      ``"1"``
1      status       ``A`` active (in the cron ZSET), ``P`` paused, ``E`` ended
2      digest       :attr:`scheduler.cron.Schedule.digest` of the definition
3      last_fire    fire time of the last job enqueued, ms, or ``""``
4      last_job     id of that job, or ``""``
5      fired        jobs enqueued by this schedule (int)
6      missed       firings skipped or coalesced (int)
7      created_ms   server time the schedule was first stored, ms
8      updated_ms   server time its definition last changed, ms
9      definition   canonical JSON (:meth:`scheduler.cron.Schedule.to_json`)
=====  ===========  ==========================================================
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from scheduler.cron.schedule import Schedule
from scheduler.timeutil import ms_to_datetime

__all__ = ["SEP", "ScheduleInfo", "ScheduleStatus", "StoredSchedule", "parse_stored"]

SEP = "\x1f"
_FIELDS = 10


class ScheduleStatus(enum.StrEnum):
    """``active`` (will fire), ``paused``, or ``ended`` (past its end time)."""

    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


_STATUS = {"A": ScheduleStatus.ACTIVE, "P": ScheduleStatus.PAUSED, "E": ScheduleStatus.ENDED}


@attrs.frozen
class StoredSchedule:
    """A decoded schedule record (times in ms since the epoch, server clock)."""

    status: ScheduleStatus
    digest: str
    last_fire_ms: int | None
    last_job_id: str | None
    fired: int
    missed: int
    created_ms: int
    updated_ms: int
    definition: str


def parse_stored(text: str | bytes) -> StoredSchedule:
    """Decode a value of the ``schedules`` hash.

    Raises:
        ValueError: not a version-1 schedule record.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    f = text.split(SEP, _FIELDS - 1)
    if len(f) != _FIELDS or f[0] != "1" or f[1] not in _STATUS:
        raise ValueError("unrecognised schedule record")
    return StoredSchedule(
        status=_STATUS[f[1]],
        digest=f[2],
        last_fire_ms=int(f[3]) if f[3] else None,
        last_job_id=f[4] or None,
        fired=int(f[5]),
        missed=int(f[6]),
        created_ms=int(f[7]),
        updated_ms=int(f[8]),
        definition=f[9],
    )


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
