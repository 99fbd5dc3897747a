"""The scheduler app the benchmark runs: ``scheduler worker bench.app:app``.

Default settings throughout (events stream on, result TTL 1 h, ...): the
benchmark measures what a user gets out of the box. The Redis URL comes from
``$BENCH_REDIS_URL``. For what-if experiments only, ``$BENCH_EVENTS_MAXLEN``
overrides the event stream cap (0 = no events); the suite never sets it.
"""

from __future__ import annotations

import os
import time

from scheduler import Scheduler

_options: dict[str, int] = {}
if os.environ.get("BENCH_EVENTS_MAXLEN"):
    _options["events_maxlen"] = int(os.environ["BENCH_EVENTS_MAXLEN"])

app = Scheduler.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), **_options)


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
