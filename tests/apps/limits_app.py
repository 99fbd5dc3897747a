"""App imported by worker subprocesses in the limit tests (URL and prefix from
the environment): each run records its start and end (wall clock, one
machine) in a Redis list, so the test can find the most runs at once."""

from __future__ import annotations

import os
import time

import redis

from scheduler import Scheduler

URL = os.environ.get("SCHEDULER_TEST_URL", "redis://127.0.0.1:6379/15")
app = Scheduler.from_url(URL, prefix=os.environ.get("SCHEDULER_TEST_PREFIX", "p"))
_log = redis.Redis.from_url(URL)


@app.task(name="limits:span", queue="lim")
def span(ms: int) -> None:
    """Run for ``ms`` milliseconds; log ``start,end`` under ``spans``."""
    start = time.time()
    time.sleep(ms / 1000)
    _log.rpush("spans", f"{start!r},{time.time()!r}")


@app.task(name="limits:sized", queue="cap", lease=1.0, max_attempts=5)
def sized(ms: int) -> None:
    """Run for ``ms`` milliseconds; log ``pid`` under ``sized`` when done."""
    time.sleep(ms / 1000)
    _log.rpush("sized", str(os.getpid()))
