"""A worker's capacity in resource units: what it may still lease (pure).

A worker may declare a capacity (``scheduler worker --capacity 8``); each
job takes its ``resource`` (``priority = weight * time / resource``; 1 for
an explicit priority). The book counts the resource of every job the worker
holds that takes room -- buffered or running, not finished ones -- and each
lease call is sent the free part (:class:`~scheduler.backend.scripts.LeaseFit`),
so the lease script hands only jobs that fit (``lua/lib/limits.lua``). The
capacity bounds buffered *and* running jobs, so the running ones never
exceed it whatever the start order.

Only the dispatcher leases for a worker with a capacity: its idle wait
(the waiter's ``BLPOP``) carries a lease of 0 jobs, and a wake-up makes the
dispatcher lease with its free capacity of that moment. A lease pipelined
behind the wait would carry the free capacity of when the wait began, and a
round trip made meanwhile (a job finished) could then lease the same room
twice. The price: one more round trip after a wake-up, only for workers
with a capacity. Default: no capacity (unlimited) -- concurrency alone
bounds the worker.
"""

from __future__ import annotations

import math

from scheduler.backend.scripts import LeaseFit
from scheduler.errors import ValidationError
from scheduler.validation import shown

__all__ = ["Capacity", "check_capacity"]


def check_capacity(value: object, name: str = "capacity") -> float:
    """``value`` as a float if it is a finite number > 0.

    Raises:
        ValidationError: anything else (negative, zero, NaN, infinite, not a number).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number > 0, got {shown(value)}")
    result = float(value)
    if not (math.isfinite(result) and result > 0):
        raise ValidationError(f"{name} must be a finite number > 0, got {shown(value)}")
    return result


class Capacity:
    """Capacity accounting of one worker.

    Args:
        total: capacity in resource units (finite, > 0).
        backfill_wait: seconds a job that fits ``total`` but not the free
            capacity may be passed by smaller jobs (0 = strict; None =
            unbounded backfill).

    Raises:
        ValidationError: a bad ``total`` or ``backfill_wait``.
    """

    def __init__(self, total: float, backfill_wait: float | None) -> None:
        self.total = check_capacity(total)
        if backfill_wait is None:
            self.wait_ms = -1
        else:
            if isinstance(backfill_wait, bool) or not isinstance(backfill_wait, int | float):
                raise ValidationError(
                    f"backfill_wait must be seconds >= 0, got {shown(backfill_wait)}"
                )
            if not (math.isfinite(backfill_wait) and backfill_wait >= 0):
                raise ValidationError(
                    f"backfill_wait must be seconds >= 0, got {shown(backfill_wait)}"
                )
            self.wait_ms = round(backfill_wait * 1000)

    def fit(self, held: float) -> LeaseFit:
        """The fit of a lease call now, ``held`` units being taken by held jobs."""
        return LeaseFit(self.total, max(0.0, self.total - held), self.wait_ms)
