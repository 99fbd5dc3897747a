"""App imported by worker subprocesses in tests (URL and prefix from the environment)."""

from __future__ import annotations

import os
import signal
import threading
import time

from scheduler import Backoff, Scheduler

app = Scheduler.from_url(
    os.environ.get("SCHEDULER_TEST_URL", "redis://127.0.0.1:6379/15"),
    prefix=os.environ.get("SCHEDULER_TEST_PREFIX", "p"),
)


@app.task(lease=1.0, max_attempts=3)
def hold(tag: str) -> dict[str, object]:
    """Blocks (for a minute) in a worker started with WORKER_ROLE=victim; returns at once
    elsewhere. Returns the pid that finished it."""
    if os.environ.get("WORKER_ROLE") == "victim":
        threading.Event().wait(60)
    return {"tag": tag, "pid": os.getpid()}


@app.task
def whoami() -> int:
    """The pid of the process that ran the task."""
    return os.getpid()


@app.task
def stamp() -> float:
    """When the task started (wall clock, seconds); for latency measurements."""
    return time.time()


@app.task(max_attempts=3)
def die_once(marker: str) -> int:
    """Kills its own process (SIGKILL, as the OOM killer would) the first time,
    leaving ``marker`` behind; returns its pid afterwards."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@app.task
def nap(seconds: float) -> int:
    """Sleeps ``seconds``, then returns the pid that ran it."""
    time.sleep(seconds)
    return os.getpid()


@app.task(timeout=0.5, max_attempts=2, backoff=Backoff(base=0.01, jitter=0.0))
def hang() -> None:
    """Never returns (until its process ends): for execution timeouts."""
    threading.Event().wait()


@app.task(max_attempts=2, backoff=Backoff(base=0.01, jitter=0.0))
def boom(message: str) -> None:
    """Always fails with ``ValueError(message)``."""
    raise ValueError(message)


@app.task(lease=1.0, max_attempts=1)
def once() -> int:
    """One attempt only; the pid of the process that ran it."""
    return os.getpid()
