"""The middleware chain's own cost per task execution, in process.

``python -m bench.trial ours middleware_chain --url URL --n 200000`` (the
suite's scenario ``middleware_chain``): CPU time (``time.process_time``,
so time spent waiting for the CPU on a loaded machine is not counted) per
call of a no-op task function called directly, through
:func:`scheduler.middleware.call_sync_chain` with no middleware (the empty
chain, what a worker without middleware runs), with one pass-through
middleware and with the timing middleware of :mod:`bench.app`, exactly as
the worker's thread runner calls it. Each variant is timed 5 times,
alternated, and the median kept. No Redis: the drain scenarios
(``drain_features``) give the end-to-end figures.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

REPEATS = 5


def _noop() -> None:
    """The task."""


def chain_cost(n: int) -> dict[str, float]:
    """Nanoseconds of CPU per call: ``direct_ns``, ``empty_chain_ns``,
    ``noop_mw_ns``, ``timing_mw_ns``, and each chain's extra over the direct
    call (``*_extra_ns``)."""
    from bench.app import noop_middleware, timing_middleware
    from scheduler import JobContext
    from scheduler.middleware import call_sync_chain

    ctx = JobContext(
        id="j1",
        task="noop",
        queue="default",
        attempt=1,
        max_attempts=3,
        meta={},
        enqueued_at=0.0,
        eta=0.0,
        lease_deadline=0.0,
    )
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}

    def through(chain: list[Any]) -> Callable[[], Any]:
        def run() -> Any:
            return call_sync_chain(chain, ctx, lambda: _noop(*args, **kwargs))

        return run

    variants: dict[str, Callable[[], Any]] = {
        "direct": lambda: _noop(*args, **kwargs),
        "empty_chain": through([]),
        "noop_mw": through([noop_middleware]),
        "timing_mw": through([timing_middleware]),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(REPEATS):
        for name, fn in variants.items():
            t0 = time.process_time()
            for _ in range(n):
                fn()
            times[name].append((time.process_time() - t0) / n * 1e9)
    out = {f"{k}_ns": statistics.median(v) for k, v in times.items()}
    for k in ("empty_chain", "noop_mw", "timing_mw"):
        out[f"{k}_extra_ns"] = out[f"{k}_ns"] - out["direct_ns"]
    return out
