"""Fire-time math for cron and interval schedules: pure functions, no Redis.

All instants are integer milliseconds since the Unix epoch (UTC), like every
time inside Redis. Nothing here reads a clock.

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
:meth:`CronRule.next_after` and :meth:`CronRule.latest_at_or_before` walk
them forwards and backwards consistently.

A consequence worth stating: ``0 * * * *`` in a zone with DST fires 23 times
on the day clocks go forward and 24 on the day they go back (the repeated
hour fires once). Use ``tz="UTC"`` or an interval schedule for "every hour of
elapsed time".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from scheduler.cron.errors import InvalidScheduleError
from scheduler.validation import shown

__all__ = [
    "ALIASES",
    "CronRule",
    "IntervalRule",
    "Rule",
    "count_fires",
    "fires_between",
    "get_zone",
    "instant_to_wall",
    "latest_fire",
    "next_fire",
    "wall_to_instant",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

#: Cron aliases accepted (croniter expands them); ``@reboot`` is not a time.
ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)

#: Latest instant a fire time may have (croniter and datetime stop at year 9999).
MAX_MS = 253_370_764_800_000  # 9999-01-01T00:00:00Z

# Safety bound on candidates examined per call; a correct rule needs 1-3.
_MAX_STEPS = 10_000

# Parsed croniters a CronRule keeps for reuse (CronRule._step).
_POOL = 4

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

# croniter's random ("R") and hashed ("H") fields are not deterministic across
# processes without extra input: refused.
_NONDETERMINISTIC = re.compile(r"(?<![A-Za-z])[HR](?![A-Za-z])")


def _to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _to_ms(when: datetime) -> int:
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
    off = _to_dt(ms).astimezone(tz).utcoffset()
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


def instant_to_wall(ms: int, tz: ZoneInfo) -> tuple[datetime, int]:
    """Wall-clock time (naive ``datetime``) and PEP 495 ``fold`` of instant ``ms`` in ``tz``.

    ``fold`` is 1 only during the second pass of a repeated wall-clock interval.
    """
    local = _to_dt(ms).astimezone(tz)
    return local.replace(tzinfo=None), local.fold


def wall_to_instant(wall: datetime, tz: ZoneInfo) -> int:
    """The instant (ms) at which wall-clock time ``wall`` (naive) fires in ``tz``.

    Existing once: that instant; repeated (clocks back): the first occurrence;
    skipped (clocks forward): the instant of the shift. See the module docstring.
    """
    off0 = wall.replace(tzinfo=tz, fold=0).utcoffset()
    off1 = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    naive_ms = _to_ms(wall.replace(tzinfo=UTC))
    i0 = naive_ms - off0 // _MS
    if off0 == off1:
        return i0
    i1 = naive_ms - off1 // _MS
    lo, hi = min(i0, i1), max(i0, i1)
    if instant_to_wall(lo, tz)[0] == wall:  # exists (twice): the first occurrence
        return lo
    return _transition(lo, hi, tz)  # skipped: the shift


def _repeat_end(ms: int, wall: datetime, tz: ZoneInfo) -> datetime | None:
    """If ``ms`` falls in the second pass of a repeated interval, the wall-clock
    time at which that interval ends (the first wall time after it); else None."""
    off0 = wall.replace(tzinfo=tz, fold=0).utcoffset()
    off1 = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert off0 is not None and off1 is not None
    if off0 == off1:
        return None
    first = _to_ms(wall.replace(tzinfo=UTC)) - off0 // _MS  # same wall time, first pass
    if first >= ms:
        return None
    shift = _transition(first, ms, tz)
    return (_to_dt(shift) + _offset(first, tz)).replace(tzinfo=None)


def _normalize(expr: object) -> str:
    if not isinstance(expr, str):
        raise InvalidScheduleError(f"cron expression must be a string, got {expr!r}")
    return " ".join(expr.split())


class Rule(Protocol):
    """What both rule kinds offer (all times in ms since the epoch)."""

    def next_after(self, ms: int) -> int | None:
        """The first fire time strictly after ``ms``, or None if there is none."""
        ...

    def iter_after(self, ms: int) -> Iterator[int]:
        """Fire times strictly after ``ms``, ascending, without duplicates."""
        ...

    def latest_at_or_before(self, ms: int) -> int | None:
        """The last fire time at or before ``ms``, or None if there is none."""
        ...


@attrs.frozen
class CronRule:
    """A cron expression evaluated in a timezone.

    Attributes:
        expr: 5 fields (``minute hour day month weekday``), 6 fields with
            **seconds first** (``second minute hour day month weekday``), or
            an alias (``@hourly``, ``@daily``, ``@midnight``, ``@weekly``,
            ``@monthly``, ``@yearly``, ``@annually``).
        tz: IANA timezone name.

    Raises:
        InvalidScheduleError: the expression is malformed, uses croniter's
            random/hashed fields (``R``/``H``), or the zone is unknown.
    """

    expr: str = attrs.field(converter=_normalize)
    tz: str = "UTC"
    _zone: ZoneInfo = attrs.field(init=False, repr=False, eq=False)
    _utc: bool = attrs.field(init=False, repr=False, eq=False)
    _pool: list[croniter] = attrs.field(init=False, repr=False, eq=False, factory=list)

    def __attrs_post_init__(self) -> None:
        expr = self.expr
        if expr.startswith("@"):
            if expr.lower() not in ALIASES:
                raise InvalidScheduleError(
                    f"unknown cron alias {expr!r}; use one of {', '.join(sorted(ALIASES))}"
                )
        else:
            fields = expr.split(" ")
            if len(fields) not in (5, 6):
                raise InvalidScheduleError(
                    f"cron expression {expr!r} has {len(fields)} fields; give 5 "
                    "(minute hour day month weekday) or 6 (second first)"
                )
            if _NONDETERMINISTIC.search(expr):
                raise InvalidScheduleError(
                    f"cron expression {expr!r}: random (R) and hashed (H) fields are not supported"
                )
        try:
            croniter(expr, datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=True)
        except (CroniterBadCronError, CroniterError, ValueError, KeyError, TypeError) as exc:
            raise InvalidScheduleError(f"invalid cron expression {expr!r}: {exc}") from None
        object.__setattr__(self, "_zone", get_zone(self.tz))
        object.__setattr__(self, "_utc", self.tz in UTC_NAMES)

    def _step(self, wall: datetime, *, prev: bool = False) -> datetime:
        """The matching wall-clock time strictly after (``prev``: before)
        ``wall`` (naive).

        The wall-clock time is presented to croniter as UTC: no DST inside
        croniter. Parsing an expression costs more than a step, so each rule
        keeps a few parsed croniters and positions one with the public
        ``start_time`` argument (a pool: threads never share one).

        Raises:
            CroniterBadDateError, OverflowError, ValueError: no such time.
        """
        try:
            it = self._pool.pop()
        except IndexError:
            it = croniter(self.expr, EPOCH, second_at_beginning=True)
        try:
            start = wall.replace(tzinfo=UTC)
            found = it.get_prev(datetime, start) if prev else it.get_next(datetime, start)
        finally:
            if len(self._pool) < _POOL:
                self._pool.append(it)
        assert isinstance(found, datetime)
        return found.replace(tzinfo=None)

    def _instant(self, wall: datetime) -> int:
        """The fire time (ms) of wall-clock time ``wall`` (:func:`wall_to_instant`)."""
        if self._utc:
            return _to_ms(wall.replace(tzinfo=UTC))
        return wall_to_instant(wall, self._zone)

    def _seek(self, ms: int) -> datetime:
        """The wall-clock time from which the next match is the first whose
        fire time can be after ``ms``."""
        if self._utc:
            return _to_dt(ms).replace(tzinfo=None)
        wall, fold = instant_to_wall(ms, self._zone)
        start = wall
        if fold:
            end = _repeat_end(ms, wall, self._zone)
            if end is not None:  # wall times up to `end` already fired in the first pass
                start = max(wall, end - timedelta(seconds=1))
        return start

    def iter_after(self, ms: int) -> Iterator[int]:
        """Fire times strictly after ``ms``, ascending, without duplicates (ms)."""
        wall = self._seek(ms)
        last = ms
        reseeds = 0
        while True:
            try:
                wall = self._step(wall)
            except (CroniterBadDateError, OverflowError, ValueError):
                return
            fire = self._instant(wall)
            if fire > MAX_MS:
                return
            if fire > last:
                yield fire
                last, reseeds = fire, 0
            else:  # inside a skipped interval that already fired at the shift: jump past it
                reseeds += 1
                if reseeds > 3:  # pragma: no cover - would be a bug in the mapping
                    raise RuntimeError(f"no progress after {last} for {self!r}")
                wall = self._seek(last)

    def next_after(self, ms: int) -> int | None:
        """The first fire time strictly after ``ms`` (ms), or None if there is none."""
        return next(self.iter_after(ms), None)

    def latest_at_or_before(self, ms: int) -> int | None:
        """The last fire time at or before ``ms`` (ms), or None if there is none."""
        if self._utc:
            wall, fold = _to_dt(ms).replace(tzinfo=None), 0
        else:
            wall, fold = instant_to_wall(ms, self._zone)
        start = wall + timedelta(milliseconds=1)  # croniter's get_prev is strict
        if fold:
            end = _repeat_end(ms, wall, self._zone)
            if end is not None:  # first-pass fire times of later wall times are earlier
                start = end
        for _ in range(_MAX_STEPS):
            try:
                start = self._step(start, prev=True)
            except (CroniterBadDateError, OverflowError, ValueError):
                return None
            fire = self._instant(start)
            if fire <= ms:
                return fire
        raise RuntimeError(f"no fire time found before {ms} for {self!r}")  # pragma: no cover


@attrs.frozen
class IntervalRule:
    """Fire every ``every_ms`` ms at ``anchor_ms + k * every_ms`` (any integer k).

    Attributes:
        every_ms: the period, ms (>= 1).
        anchor_ms: one fire time, ms (the schedule's start, else the epoch,
            so that ``every=1h`` fires on the hour, UTC).
    """

    every_ms: int
    anchor_ms: int = 0

    def next_after(self, ms: int) -> int:
        """The first fire time strictly after ``ms``."""
        return self.anchor_ms + ((ms - self.anchor_ms) // self.every_ms + 1) * self.every_ms

    def iter_after(self, ms: int) -> Iterator[int]:
        """Fire times strictly after ``ms``, ascending (ms)."""
        fire = self.next_after(ms)
        while fire <= MAX_MS:
            yield fire
            fire += self.every_ms

    def latest_at_or_before(self, ms: int) -> int | None:
        """The last fire time at or before ``ms``."""
        return self.anchor_ms + ((ms - self.anchor_ms) // self.every_ms) * self.every_ms


def next_fire(
    rule: Rule, after_ms: int, start_ms: int | None = None, end_ms: int | None = None
) -> int | None:
    """The first fire time strictly after ``after_ms`` within ``[start_ms, end_ms]``.

    Args:
        rule: a :class:`CronRule` or :class:`IntervalRule`.
        after_ms: ms since the epoch.
        start_ms: first allowed fire time (inclusive), or None.
        end_ms: last allowed fire time (inclusive), or None.

    Returns:
        The fire time in ms, or None when no fire time is left before the end.
    """
    lower = after_ms if start_ms is None else max(after_ms, start_ms - 1)
    fire = rule.next_after(lower)
    if fire is None or (end_ms is not None and fire > end_ms):
        return None
    return fire


def latest_fire(
    rule: Rule, at_ms: int, start_ms: int | None = None, end_ms: int | None = None
) -> int | None:
    """The last fire time at or before ``at_ms`` within ``[start_ms, end_ms]``, or None."""
    upper = at_ms if end_ms is None else min(at_ms, end_ms)
    fire = rule.latest_at_or_before(upper)
    if fire is None or (start_ms is not None and fire < start_ms):
        return None
    return fire


def fires_between(
    rule: Rule,
    from_ms: int,
    to_ms: int,
    limit: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> list[int]:
    """Fire times ``t`` with ``from_ms <= t <= to_ms`` (ascending), at most ``limit``."""
    lower = from_ms - 1 if start_ms is None else max(from_ms, start_ms) - 1
    upper = to_ms if end_ms is None else min(to_ms, end_ms)
    result: list[int] = []
    if limit <= 0:
        return result
    for fire in rule.iter_after(lower):
        if fire > upper:
            break
        result.append(fire)
        if len(result) >= limit:
            break
    return result


def count_fires(
    rule: Rule,
    from_ms: int,
    to_ms: int,
    cap: int,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> int:
    """How many fire times lie in ``[from_ms, to_ms)``, counting at most to ``cap``.

    Exact (and O(1)) for interval rules, which ignore ``cap``; for cron
    rules the count stops at ``cap`` so a long outage of a per-second
    schedule stays cheap.
    """
    if to_ms <= from_ms:
        return 0
    if isinstance(rule, IntervalRule):
        lo = from_ms if start_ms is None else max(from_ms, start_ms)
        hi = to_ms - 1 if end_ms is None else min(to_ms - 1, end_ms)
        first = rule.next_after(lo - 1)
        last = rule.latest_at_or_before(hi)
        if last is None or last < first:
            return 0
        return (last - first) // rule.every_ms + 1
    return len(fires_between(rule, from_ms, to_ms - 1, cap, start_ms, end_ms))
