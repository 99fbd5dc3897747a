"""The stored schedule record: how one schedule is kept in its queue's ``schedules`` hash.

Each schedule is one entry of its queue's ``P:{Q}:schedules`` HASH (field =
schedule id), whose value holds the run state and the definition, joined by
``"\\x1f"`` like job records (``lua/lib/schedule.lua`` reads and writes the
same layout); its next fire time is its score in the ``P:{Q}:cron`` ZSET.
State and definition share one value so that every script reads and writes
a schedule with one HGET/HSET.

The layout is defined once, by :data:`FIELDS` (index constants derived from
it); ``lua/lib/schedule.lua`` names the same fields ``S_<NAME>`` (1-based)
and ``tests/test_record_layout.py`` checks both sides agree.

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

Validity -- the same rules in :func:`parse_stored` and ``sched_decode`` of
``lua/lib/schedule.lua`` (``tests/test_schedule_record.py`` runs both on
random and malformed records and compares): exactly 10 fields (the
definition is the rest of the value), ``version`` ``"1"``, ``status`` one
of ``A``/``P``/``E``, ``digest`` 16 lowercase hex digits, and every number
(``last_fire`` unless empty, ``fired``, ``missed``, ``created_ms``,
``updated_ms``) 1 to 15 ASCII digits: no sign, no ``_``, no space, no other
script's digits -- Python's ``int()`` takes ``"1_0"`` and ``"\\u0661"`` where
Lua's ``tonumber`` does not, so neither side uses them on stored text. 15
digits keep every value exact as a Lua number (< 2^53). The definition is
not looked into here (Lua never parses JSON); decoding it is
:meth:`scheduler.cron.Schedule.from_json`'s.
"""

from __future__ import annotations

import enum
import re

import attrs

__all__ = ["FIELDS", "SEP", "VERSION", "ScheduleStatus", "StoredSchedule", "parse_stored"]

SEP = "\x1f"
#: The schedule record format version (field ``version``).
VERSION = "1"

#: The schedule record's fields, in order: the single definition of the layout.
FIELDS: tuple[str, ...] = (
    "version",
    "status",
    "digest",
    "last_fire",
    "last_job",
    "fired",
    "missed",
    "created_ms",
    "updated_ms",
    "definition",
)
_N = len(FIELDS)
_VERSION, _STATUS, _DIGEST = FIELDS.index("version"), FIELDS.index("status"), FIELDS.index("digest")
_LAST_FIRE, _LAST_JOB = FIELDS.index("last_fire"), FIELDS.index("last_job")
_FIRED, _MISSED = FIELDS.index("fired"), FIELDS.index("missed")
_CREATED_MS, _UPDATED_MS = FIELDS.index("created_ms"), FIELDS.index("updated_ms")
_DEFINITION = FIELDS.index("definition")

#: A stored number: 1 to 15 ASCII digits (lua/lib/schedule.lua S_NUMBER).
_NUMBER = re.compile(r"[0-9]{1,15}")
#: A stored digest: 16 lowercase hex digits (lua/lib/schedule.lua S_DIGEST_RE).
_DIGEST_RE = re.compile(r"[0-9a-f]{16}")


class ScheduleStatus(enum.StrEnum):
    """``active`` (will fire), ``paused``, or ``ended`` (past its end time)."""

    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


_STATUS_LETTERS = {
    "A": ScheduleStatus.ACTIVE,
    "P": ScheduleStatus.PAUSED,
    "E": ScheduleStatus.ENDED,
}


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


def _number(f: list[str], index: int) -> int:
    value = f[index]
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"field {FIELDS[index]} is not 1-15 ASCII digits: {value[:40]!r}")
    return int(value)


def parse_stored(text: str | bytes) -> StoredSchedule:
    """Decode a value of the ``schedules`` hash (rules: the module docstring).

    Args:
        text: the stored value (bytes are decoded as UTF-8, invalid
            sequences replaced: only the free-text fields can hold them).

    Raises:
        ValueError: not a valid version-1 schedule record; the message names
            the first bad field.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    f = text.split(SEP, _N - 1)
    if len(f) != _N:
        raise ValueError(f"{len(f)} fields instead of {_N}")
    if f[_VERSION] != VERSION:
        raise ValueError(f"unknown record version {f[_VERSION][:40]!r}")
    if f[_STATUS] not in _STATUS_LETTERS:
        raise ValueError(f"unknown status {f[_STATUS][:40]!r}")
    if not _DIGEST_RE.fullmatch(f[_DIGEST]):
        raise ValueError(f"field digest is not 16 hex digits: {f[_DIGEST][:40]!r}")
    return StoredSchedule(
        status=_STATUS_LETTERS[f[_STATUS]],
        digest=f[_DIGEST],
        last_fire_ms=_number(f, _LAST_FIRE) if f[_LAST_FIRE] else None,
        last_job_id=f[_LAST_JOB] or None,
        fired=_number(f, _FIRED),
        missed=_number(f, _MISSED),
        created_ms=_number(f, _CREATED_MS),
        updated_ms=_number(f, _UPDATED_MS),
        definition=f[_DEFINITION],
    )
