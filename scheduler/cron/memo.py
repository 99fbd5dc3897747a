"""A rule that remembers its answers (used by :class:`scheduler.cron.Schedule`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from scheduler.cron.timing import Rule

__all__ = ["MemoRule"]

#: ``next_after`` answers kept for the whole process, shared by every
#: schedule with an equal rule (the same expression and zone): schedules
#: due in the same second mostly share their expression, and then a cron
#: process takes one croniter step for all of them instead of one each.
SHARED_SIZE = 8192

_shared: dict[tuple[Rule, int], int | None] = {}


def _remember(key: tuple[Rule, int], value: int | None) -> None:
    if len(_shared) >= SHARED_SIZE:
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread
            _shared.pop(next(iter(_shared)))
    _shared[key] = value


class MemoRule:
    """A rule that remembers its ``next_after`` answers (same answers,
    fewer croniter steps): a cron process computes a schedule's next fire
    time ahead, while it waits, and finds it again when the firing is due.
    The answers are kept per process for equal rules (rules are immutable
    values: equal rules give equal answers), the oldest forgotten first.

    Args:
        rule: the rule to ask (hashable: :class:`~scheduler.cron.timing.CronRule`).
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def next_after(self, ms: int) -> int | None:
        """As :meth:`Rule.next_after` (ms); remembered."""
        key = (self.rule, ms)
        try:
            return _shared[key]
        except KeyError:
            pass
        value = self.rule.next_after(ms)
        _remember(key, value)
        return value

    def iter_after(self, ms: int) -> Iterator[int]:
        """As :meth:`Rule.iter_after` (ms)."""
        return self.rule.iter_after(ms)

    def latest_at_or_before(self, ms: int) -> int | None:
        """As :meth:`Rule.latest_at_or_before` (ms)."""
        return self.rule.latest_at_or_before(ms)
