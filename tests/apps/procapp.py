"""App imported by worker subprocesses in tests (URL and prefix from the environment)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import redis.asyncio

from scheduler import Backoff, Scheduler, current_job, set_progress

URL = os.environ.get("SCHEDULER_TEST_URL", "redis://127.0.0.1:6379/15")
app = Scheduler.from_url(
    URL,
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


# -- writing tasks: context, hooks and the event loop of a pool child ----------

#: Processes whose start-up hook ran.
STARTED: list[int] = []
_clients: list[redis.asyncio.Redis] = []


@app.hooks.on_startup
def _note_start() -> None:
    """Sleeps $SCHEDULER_TEST_STARTUP_DELAY seconds (if set), then leaves a
    file named after the pid in $SCHEDULER_TEST_STARTUP_DIR (if set) holding
    the time it woke (``time.time()``). Raises RuntimeError if
    $SCHEDULER_TEST_STARTUP_FAIL is set (a process pool's children: the
    worker does not run the hooks itself)."""
    if os.environ.get("SCHEDULER_TEST_STARTUP_FAIL"):
        raise RuntimeError("start-up hook failed (SCHEDULER_TEST_STARTUP_FAIL)")
    time.sleep(float(os.environ.get("SCHEDULER_TEST_STARTUP_DELAY", "0")))
    STARTED.append(os.getpid())
    where = os.environ.get("SCHEDULER_TEST_STARTUP_DIR")
    if where:
        with open(os.path.join(where, str(os.getpid())), "w") as f:
            f.write(repr(time.time()))


@app.hooks.on_startup
async def _connect() -> None:
    """An app-wide async client made on the process's event loop."""
    _clients.append(redis.asyncio.Redis.from_url(URL))


@app.hooks.on_shutdown
async def _note_stop() -> None:
    """Leaves a file named after the pid in $SCHEDULER_TEST_SHUTDOWN_DIR (if set)."""
    for client in _clients:
        await client.aclose()
    where = os.environ.get("SCHEDULER_TEST_SHUTDOWN_DIR")
    if where:
        with open(os.path.join(where, str(os.getpid())), "w"):
            pass


@app.task
def context() -> dict[str, Any]:
    """The job's context as the task sees it, and where it ran."""
    job = current_job()
    set_progress(0.5, "half way")
    return {
        "id": job.id,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "meta": dict(job.meta),
        "pid": os.getpid(),
        "started": os.getpid() in STARTED,
    }


@app.task
async def async_count() -> list[int]:
    """Increments a counter through the client made at start-up: ``[pid, count]``."""
    return [os.getpid(), int(await _clients[0].incr("async-count"))]


# -- counting executions (lost replies, tests/test_worker_lost_replies.py) ----


@app.task
def tally(seconds: float = 0.0) -> int:
    """Appends ``"job id attempt pid"`` to the file $SCHEDULER_TEST_RUNS (one
    line per execution, from any process), sleeps ``seconds``; returns the
    attempt."""
    job = current_job()
    with open(os.environ["SCHEDULER_TEST_RUNS"], "a") as f:
        f.write(f"{job.id} {job.attempt} {os.getpid()}\n")
    time.sleep(seconds)
    return job.attempt


@app.task(max_attempts=1)
def gated(started: str, release: str, finished: str = "") -> int:
    """Writes its pid to the file ``started``, then waits until the file
    ``release`` exists (checked every 10 ms); then, if ``finished`` names a
    directory, creates the file named by its pid there; returns its pid."""
    with open(started + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(started + ".tmp", started)
    while not os.path.exists(release):
        time.sleep(0.01)
    if finished:
        open(os.path.join(finished, str(os.getpid())), "w").close()
    return os.getpid()


@app.task
def chatty(text: str) -> int:
    """Logs ``text`` at INFO on the ``tests.apps.procapp`` logger; returns its pid."""
    logging.getLogger(__name__).info("task says %s", text)
    return os.getpid()
