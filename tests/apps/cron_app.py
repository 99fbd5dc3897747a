"""App imported by cron subprocesses in tests (``tests/test_cron_process.py``).

Environment: ``SCHEDULER_TEST_URL`` and ``SCHEDULER_TEST_PREFIX`` as for
``procapp``; ``CRON_APP_MODE`` picks the declared schedules; and
``CRON_APP_VERSION`` ("1" or "2") stands for two versions of the code that
declare the same schedule ids differently.
"""

from __future__ import annotations

import os
from datetime import timedelta

from scheduler import Scheduler

app = Scheduler.from_url(
    os.environ.get("SCHEDULER_TEST_URL", "redis://127.0.0.1:6379/15"),
    prefix=os.environ.get("SCHEDULER_TEST_PREFIX", "p"),
)
MODE = os.environ.get("CRON_APP_MODE", "exactly_once")
VERSION = os.environ.get("CRON_APP_VERSION", "1")


@app.task
def tick(label: str) -> str:
    """Returns its label."""
    return label


if MODE == "exactly_once":
    # Same ids in both versions; version 2 changes the arguments and the
    # seconds-level expression's timezone (a changed definition).
    app.every(1, tick, [f"every-v{VERSION}"], id="every-second")
    app.cron(
        "* * * * * *",
        tick,
        [f"cron-v{VERSION}"],
        id="cron-second",
        tz="Europe/Paris" if VERSION == "1" else "America/New_York",
    )
elif MODE == "misfire":
    app.every(1, tick, ["coalesce"], id="coalesce", misfire="coalesce")
    app.every(1, tick, ["skip"], id="skip", misfire="skip", misfire_grace=0.5)
    app.every(
        1, tick, ["catch_up"], id="catch-up", misfire="catch_up", misfire_grace=timedelta(minutes=1)
    )
elif MODE == "damaged":
    app.every(1, tick, ["ok"], id="ok")
elif MODE == "worker":
    app.every(1, tick, ["worker"], id="with-worker")
