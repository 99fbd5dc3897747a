"""App on a Redis Cluster or Sentinel URL, imported by worker subprocesses in
tests (``SCHEDULER_TEST_URL``): made at import, as users write it."""

from __future__ import annotations

import os

from scheduler import Scheduler

app = Scheduler.from_url(os.environ["SCHEDULER_TEST_URL"], prefix="topo")


@app.task(name="echo")
def echo(x: str) -> str:
    return x
