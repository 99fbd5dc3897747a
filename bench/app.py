"""The scheduler app the benchmark runs: ``scheduler worker bench.app:app``.

Default settings throughout (events stream on, result TTL 1 h, ...): the
benchmark measures what a user gets out of the box. The Redis URL comes from
``$BENCH_REDIS_URL``. For what-if experiments only, ``$BENCH_EVENTS_MAXLEN``
overrides the event stream cap (0 = no events); the suite never sets it.
``$BENCH_MIDDLEWARE`` adds one middleware for the middleware-cost variants
(:class:`bench.variants.OursFeature`): ``noop`` only calls ``call_next()``;
``timing`` is the timing middleware of :mod:`scheduler.middleware`'s docstring
(its log line is below the worker's WARNING level). Unset: no middleware.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from scheduler import Scheduler

_options: dict[str, int] = {}
if os.environ.get("BENCH_EVENTS_MAXLEN"):
    _options["events_maxlen"] = int(os.environ["BENCH_EVENTS_MAXLEN"])

app = Scheduler.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), **_options)
log = logging.getLogger("bench.app")


def noop_middleware(ctx: Any, call_next: Any) -> Any:
    """Pass through: the cost of one link in the chain."""
    return call_next()


def timing_middleware(ctx: Any, call_next: Any) -> Any:
    """Log how long the task took (a typical real middleware)."""
    started = time.monotonic()
    try:
        return call_next()
    finally:
        log.info("%s took %.3f s", ctx.id, time.monotonic() - started)


_middleware = os.environ.get("BENCH_MIDDLEWARE", "")
if _middleware:
    app.hooks.middleware({"noop": noop_middleware, "timing": timing_middleware}[_middleware])


@app.task
def noop() -> None:
    """Do nothing (throughput scenarios)."""


@app.task
def stamp() -> float:
    """Return the wall-clock time at which the task started, seconds since the epoch."""
    return time.time()


@app.task
def blob(size: int) -> str:
    """Return ``size`` characters of text (the expiry scenario's large results)."""
    return "x" * size
