"""Where jobs run (the worker's pool): a thread runner (default) or a process runner.

Both take a job with :meth:`submit` and report ``(job, outcome)`` through a
callback from whatever thread finished it; the dispatcher never hands a
runner more jobs than it has slots. The thread runner is a fixed set of
threads reading one :class:`queue.SimpleQueue` -- lighter than
``concurrent.futures`` (no future, lock or callback list per job), which
matters on the worker's hot path.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable

from scheduler.serialization import encode_error
from scheduler.worker.execution import (
    AppLoader,
    LeasedJob,
    Outcome,
    TaskApp,
    init_child,
    run_in_child,
    run_task,
)

__all__ = ["ProcessRunner", "Report", "ThreadRunner", "crash_outcome"]

log = logging.getLogger("scheduler.worker")

#: Callback receiving each finished job and its outcome.
Report = Callable[[LeasedJob, Outcome], None]


def crash_outcome(exc: BaseException, job: LeasedJob) -> Outcome:
    """The (retryable) outcome of a job whose runner failed under it."""
    message = f"worker pool failed while running the job: {type(exc).__name__}: {exc}"
    return Outcome(
        ok=False,
        text=encode_error(message, type(exc).__name__, "", job.attempt),
        error=message,
        retryable=True,
    )


class ThreadRunner:
    """``size`` daemon threads running jobs of ``app`` in this process.

    Threads still running a job at shutdown are left to finish in the
    background (their leases were released; their results will be refused).
    """

    def __init__(self, app: TaskApp, size: int, report: Report) -> None:
        self._app = app
        self._report = report
        self._jobs: queue.SimpleQueue[LeasedJob | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"scheduler-job-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def broken(self) -> bool:
        """Thread runners do not break."""
        return False

    def submit(self, job: LeasedJob) -> None:
        """Queue ``job`` for the next free thread."""
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Tell the threads to exit once idle (does not wait)."""
        for _ in self._threads:
            self._jobs.put(None)

    def _run(self) -> None:
        app, report, jobs = self._app, self._report, self._jobs
        while (job := jobs.get()) is not None:
            try:
                outcome = run_task(app, job.task, job.payload, job.attempt)
            except BaseException as exc:  # run_task does not raise; belt and braces
                outcome = crash_outcome(exc, job)
            report(job, outcome)


class ProcessRunner:
    """A pool of ``size`` child processes (spawned), each importing the app
    with ``load(app_path)`` (``load`` must be picklable: a module-level
    function). A child that dies (e.g. killed by the OOM killer) breaks the
    pool: the jobs it held fail as retryable and :attr:`broken` tells the
    dispatcher to start a new runner."""

    def __init__(self, app_path: str, size: int, report: Report, load: AppLoader) -> None:
        self._report = report
        self._pool = cf.ProcessPoolExecutor(
            max_workers=size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_child,
            initargs=(load, app_path),
        )

    @property
    def broken(self) -> bool:
        """True once a child died and the pool can take no more jobs."""
        return bool(getattr(self._pool, "_broken", False))

    def submit(self, job: LeasedJob) -> None:
        """Run ``job`` in a child process."""
        try:
            future = self._pool.submit(run_in_child, job.task, job.payload, job.attempt)
        except RuntimeError as exc:  # broken or shut down
            self._report(job, crash_outcome(exc, job))
            return
        future.add_done_callback(functools.partial(self._done, job))

    def _done(self, job: LeasedJob, future: cf.Future[Outcome]) -> None:
        try:
            outcome = future.result()
        except BaseException as exc:  # the pool failed (a child died)
            outcome = crash_outcome(exc, job)
        self._report(job, outcome)

    def shutdown(self) -> None:
        """Stop the pool and terminate its children (does not wait for jobs)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(self._pool, "_processes", {}).values()):
            proc.terminate()
