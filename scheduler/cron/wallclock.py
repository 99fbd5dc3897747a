"""Wall-clock time in a timezone: the instant a matching wall-clock time fires.

Pure functions, no Redis, no clock. All instants are integer milliseconds
since the Unix epoch (UTC), like every time inside Redis.

Cron expressions are matched by croniter against *wall-clock* time of the
schedule's timezone. croniter only ever sees wall-clock times dressed up as
UTC (a zone without daylight saving), so its own DST handling -- which fires
a repeated wall-clock time twice -- never comes into play. The mapping from a
matching wall-clock time ``w`` to the instant it fires is ours
(:func:`wall_to_instant`):

* ``w`` exists once: that instant.
* ``w`` occurs twice (clocks go back): the **first** occurrence only, so the
  time fires once.
* ``w`` does not exist (clocks go forward): the instant of the shift, so the
  skipped time fires once, at the shift. Several skipped times (e.g. ``*/15``
  over a one-hour gap) and the first time after the gap collapse into that
  one firing.

This mapping never decreases as ``w`` grows, so the fire times of a schedule
are the sorted, de-duplicated images of the matching wall-clock times;
:meth:`~scheduler.cron.rules.CronRule.next_after` and
:meth:`~scheduler.cron.rules.CronRule.latest_at_or_before` walk them
forwards and backwards consistently.

A consequence worth stating: ``0 * * * *`` in a zone with DST fires 23 times
on the day clocks go forward and 24 on the day they go back (the repeated
hour fires once). Use ``tz="UTC"`` or an interval schedule for "every hour of
elapsed time".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.cron.errors import InvalidScheduleError
from scheduler.validation import shown

__all__ = [
    "EPOCH",
    "UTC_NAMES",
    "get_zone",
    "instant_to_wall",
    "ms_of",
    "repeat_end",
    "utc_of",
    "wall_to_instant",
]

#: The Unix epoch (aware, UTC).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

#: Zone names that are UTC itself (no offset, no transitions): their rules
#: skip the wall-clock mapping.
UTC_NAMES = frozenset(
    {
        "UTC",
        "Etc/UTC",
        "Etc/UCT",
        "UCT",
        "Etc/Universal",
        "Universal",
        "Etc/Zulu",
        "Zulu",
        "Etc/GMT",
        "GMT",
        "Etc/GMT0",
        "GMT0",
        "Etc/GMT+0",
        "Etc/GMT-0",
        "GMT+0",
        "GMT-0",
        "Etc/Greenwich",
        "Greenwich",
    }
)


def utc_of(ms: int) -> datetime:
    """The aware UTC ``datetime`` of instant ``ms`` (ms since the epoch)."""
    return EPOCH + timedelta(milliseconds=ms)


def ms_of(when: datetime) -> int:
    """The instant (ms since the epoch, floored) of aware ``datetime`` ``when``."""
    return (when - EPOCH) // _MS


def get_zone(name: str) -> ZoneInfo:
    """Return the ``zoneinfo`` zone ``name`` (e.g. ``"Europe/Paris"``).

    Raises:
        InvalidScheduleError: unknown or malformed zone name (a non-string,
            hashable or not, included).
    """
    if not isinstance(name, str) or not name:
        raise InvalidScheduleError(f"timezone must be a non-empty string, got {shown(name)}")
    return _zone(name)


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidScheduleError(f"unknown timezone {shown(name)}: {exc}") from None


def _offset(ms: int, tz: ZoneInfo) -> timedelta:
    off = utc_of(ms).astimezone(tz).utcoffset()
    assert off is not None
    return off


def _transition(lo: int, hi: int, tz: ZoneInfo) -> int:
    """The first ms in ``(lo, hi]`` whose UTC offset is that of ``hi`` (bisection).

    Requires the offsets at ``lo`` and ``hi`` to differ (one transition between).
    """
    target = _offset(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, tz) == target:
            hi = mid
        else:
            lo = mid
    return hi


def _offsets(wall: datetime, tz: ZoneInfo) -> tuple[timedelta, timedelta]:
    """The UTC offsets of wall-clock time ``wall`` (naive) in ``tz`` at folds 0 and 1
    (equal unless ``wall`` is repeated or skipped)."""
    off0 = wall.replace(tzinfo=tz, fold=0).utcoffset()
    off1 = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    return off0, off1


def instant_to_wall(ms: int, tz: ZoneInfo) -> tuple[datetime, int]:
    """Wall-clock time (naive ``datetime``) and PEP 495 ``fold`` of instant ``ms`` in ``tz``.

    ``fold`` is 1 only during the second pass of a repeated wall-clock interval.
    """
    local = utc_of(ms).astimezone(tz)
    return local.replace(tzinfo=None), local.fold


def wall_to_instant(wall: datetime, tz: ZoneInfo) -> int:
    """The instant (ms) at which wall-clock time ``wall`` (naive) fires in ``tz``.

    Existing once: that instant; repeated (clocks back): the first occurrence;
    skipped (clocks forward): the instant of the shift. See the module docstring.
    """
    off0, off1 = _offsets(wall, tz)
    naive_ms = ms_of(wall.replace(tzinfo=UTC))
    i0 = naive_ms - off0 // _MS
    if off0 == off1:
        return i0
    i1 = naive_ms - off1 // _MS
    lo, hi = min(i0, i1), max(i0, i1)
    if instant_to_wall(lo, tz)[0] == wall:  # exists (twice): the first occurrence
        return lo
    return _transition(lo, hi, tz)  # skipped: the shift


def repeat_end(ms: int, wall: datetime, tz: ZoneInfo) -> datetime | None:
    """If ``ms`` falls in the second pass of a repeated interval, the wall-clock
    time at which that interval ends (the first wall time after it); else None."""
    off0, off1 = _offsets(wall, tz)
    if off0 == off1:
        return None
    first = ms_of(wall.replace(tzinfo=UTC)) - off0 // _MS  # same wall time, first pass
    if first >= ms:
        return None
    shift = _transition(first, ms, tz)
    return (utc_of(shift) + _offset(first, tz)).replace(tzinfo=None)
