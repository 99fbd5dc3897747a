"""The stored schedule record: how one schedule is kept in its queue's ``schedules`` hash.

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
2      digest       the schedule's digest of the definition
3      last_fire    fire time of the last job enqueued, ms, or ``""``
4      last_job     id of that job, or ``""``
5      fired        jobs enqueued by this schedule (int)
6      missed       firings skipped or coalesced (int)
7      created_ms   server time the schedule was first stored, ms
8      updated_ms   server time its definition last changed, ms
9      definition   canonical JSON (``Schedule.to_json``)
=====  ===========  ==========================================================
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["SEP", "ScheduleStatus", "StoredSchedule", "parse_stored"]

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
