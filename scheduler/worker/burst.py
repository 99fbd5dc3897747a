"""Burst mode: run every ready and due job, then return (``scheduler worker
--burst``, :meth:`scheduler.Worker.run_until_empty`).

For tests, scripts and cron-style batch runs. The worker runs as usual in
the calling thread; a watcher thread asks Redis, atomically per queue, how
many jobs of the worker's queues could still run now (leased, ready unless
paused, delayed and due: :meth:`scheduler.backend.Backend.pending_now`) and
stops the worker when none are left and the worker holds no lease. Jobs
those jobs enqueue (ready or due) are run too; a retry whose backoff ends
later, or a delayed job not yet due, is left for a later run -- as arq's and
saq's ``burst``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from scheduler.backend import Backend

__all__ = ["BurstWorker", "run_until_empty"]

#: Pause between two checks of the queues, seconds.
CHECK_INTERVAL = 0.02


class BurstWorker(Protocol):
    """What burst mode needs of a worker (:class:`scheduler.Worker` is one)."""

    backend: Backend
    queues: list[str]

    def run(self) -> None:
        """Run until stopped."""
        ...

    def stop(self, grace: float | None = None) -> None:
        """Stop leasing."""
        ...

    def snapshot(self) -> Sequence[object]:
        """The leases held now."""
        ...


def _empty(backend: Backend, queues: Sequence[str]) -> bool:
    now = backend.server_time_ms()
    return all(backend.pending_now(q, now) == 0 for q in queues)


def run_until_empty(worker: BurstWorker, timeout: float | None = None) -> bool:
    """Run ``worker`` until its queues have nothing left to run now.

    Args:
        worker: the worker (not running yet).
        timeout: give up after this many seconds (None: no limit).

    Returns:
        True if the queues were emptied, False if ``timeout`` passed first.

    Raises:
        StartupError: as :meth:`scheduler.Worker.run`.
    """
    done = threading.Event()
    emptied = [False]
    deadline = None if timeout is None else time.monotonic() + timeout

    def watch(idle: Callable[[], bool]) -> None:
        # Two empty readings in a row, the second after the worker held no
        # lease: a job's follow-up is enqueued before the job completes.
        streak = 0
        while not done.wait(CHECK_INTERVAL):
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                streak = streak + 1 if idle() else 0
            except Exception:  # Redis unreachable for a moment: check again
                streak = 0
            if streak >= 2:
                emptied[0] = True
                break
        worker.stop()

    def idle() -> bool:
        return not worker.snapshot() and _empty(worker.backend, worker.queues)

    watcher = threading.Thread(target=watch, args=(idle,), name="burst-watch", daemon=True)
    watcher.start()
    try:
        worker.run()
    finally:
        done.set()
        watcher.join()
    return emptied[0]
