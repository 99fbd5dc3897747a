"""Fire times of a schedule within its bounds: pure functions, no Redis.

All instants are integer milliseconds since the Unix epoch (UTC), like every
time inside Redis. Nothing here reads a clock. The functions take a rule
(:mod:`scheduler.cron.rules`) and the schedule's ``start``/``end`` (inclusive)
and answer what the misfire policy (:mod:`scheduler.cron.policy`) and the
schedule ask: the next fire time, the latest one, those in a window and how
many. How a wall-clock time maps to an instant across daylight-saving changes
is :mod:`scheduler.cron.wallclock`.

The rule and zone names are re-exported here, so this module stays the one
entry point of the fire-time math.
"""

from __future__ import annotations

from scheduler.cron.rules import ALIASES, MAX_MS, CronRule, IntervalRule, Rule
from scheduler.cron.wallclock import UTC_NAMES, get_zone, instant_to_wall, wall_to_instant

__all__ = [
    "ALIASES",
    "MAX_MS",
    "UTC_NAMES",
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
