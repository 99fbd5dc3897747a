"""Cron and interval rules: the fire times of a schedule, without bounds.

Pure, no Redis, no clock; instants are integer milliseconds since the Unix
epoch (UTC). A :class:`CronRule` matches wall-clock times of its zone with
croniter and maps each to the instant it fires
(:func:`scheduler.cron.wallclock.wall_to_instant`: a repeated time fires once,
a skipped one at the shift); an :class:`IntervalRule` is arithmetic. The
schedule's ``start``/``end`` bounds are applied by :mod:`scheduler.cron.timing`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import attrs
from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.wallclock import (
    EPOCH,
    UTC_NAMES,
    get_zone,
    instant_to_wall,
    ms_of,
    repeat_end,
    utc_of,
    wall_to_instant,
)

__all__ = ["ALIASES", "MAX_MS", "CronRule", "IntervalRule", "Rule"]

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

# croniter's random ("R") and hashed ("H") fields are not deterministic across
# processes without extra input: refused.
_NONDETERMINISTIC = re.compile(r"(?<![A-Za-z])[HR](?![A-Za-z])")


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
            return ms_of(wall.replace(tzinfo=UTC))
        return wall_to_instant(wall, self._zone)

    def _seek(self, ms: int) -> datetime:
        """The wall-clock time from which the next match is the first whose
        fire time can be after ``ms``."""
        if self._utc:
            return utc_of(ms).replace(tzinfo=None)
        wall, fold = instant_to_wall(ms, self._zone)
        start = wall
        if fold:
            end = repeat_end(ms, wall, self._zone)
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
            wall, fold = utc_of(ms).replace(tzinfo=None), 0
        else:
            wall, fold = instant_to_wall(ms, self._zone)
        start = wall + timedelta(milliseconds=1)  # croniter's get_prev is strict
        if fold:
            end = repeat_end(ms, wall, self._zone)
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
