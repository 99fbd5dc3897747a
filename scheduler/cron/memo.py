"""A rule that remembers its answers (used by :class:`scheduler.cron.Schedule`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from scheduler.cron.timing import Rule

__all__ = ["MemoRule"]


class MemoRule:
    """A rule that remembers its last ``next_after`` answers (same answers,
    fewer croniter steps): a cron process computes a schedule's next fire
    time ahead, while it waits, and finds it again when the firing is due.

    Args:
        rule: the rule to ask.
        size: answers kept (oldest forgotten first).
    """

    def __init__(self, rule: Rule, size: int = 4) -> None:
        self.rule = rule
        self._size = size
        self._memo: dict[int, int | None] = {}

    def next_after(self, ms: int) -> int | None:
        """As :meth:`Rule.next_after` (ms); remembered."""
        if ms in self._memo:
            return self._memo[ms]
        value = self.rule.next_after(ms)
        if len(self._memo) >= self._size:
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread
                self._memo.pop(next(iter(self._memo)))
        self._memo[ms] = value
        return value

    def iter_after(self, ms: int) -> Iterator[int]:
        """As :meth:`Rule.iter_after` (ms)."""
        return self.rule.iter_after(ms)

    def latest_at_or_before(self, ms: int) -> int | None:
        """As :meth:`Rule.latest_at_or_before` (ms)."""
        return self.rule.latest_at_or_before(ms)
