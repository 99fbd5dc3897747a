"""Where jobs run (the worker's pool): a thread runner (default) or a process
runner (:mod:`scheduler.worker.children`), and the outcomes a runner makes up
itself (the pool failed under a job, or the job ran out of time).

Both runners take a job with :meth:`submit` and report ``(job, outcome)``
through a callback from whatever thread finished it; the dispatcher never
hands a runner more jobs than it has slots. The thread runner is a fixed set
of threads reading one :class:`queue.SimpleQueue` -- lighter than
``concurrent.futures`` (no future, lock or callback list per job), which
matters on the worker's hot path.

**Execution timeout** (``job.options.timeout_ms``). When an attempt runs
longer, the runner reports a retryable :class:`~scheduler.errors.JobTimeoutError`
outcome at once, so the dispatcher reports the failure (retry or dead by
``max_attempts``) and the heartbeat stops extending the lease. A thread
cannot be killed: the thread runner leaves it running in the background,
never reports its result, and starts a replacement thread so the worker keeps
its concurrency -- but at most ``size`` such stuck threads at a time; beyond
that a stuck thread keeps its slot until its task returns (an unbounded
number of hung threads would pile up memory, sockets and CPU). The process
runner kills the child and starts a new one (:mod:`~scheduler.worker.children`).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

from scheduler.serialization import encode_error
from scheduler.worker.execution import (
    LeasedJob,
    Outcome,
    TaskApp,
    TaskRuntime,
    job_context_of,
    run_task,
)

__all__ = ["Report", "ThreadRunner", "crash_outcome", "timeout_outcome"]

log = logging.getLogger("scheduler.worker")

#: Callback receiving each finished job and its outcome.
Report = Callable[[LeasedJob, Outcome], None]


def crash_outcome(exc: BaseException | str, job: LeasedJob) -> Outcome:
    """The (retryable) outcome of a job whose runner failed under it (an
    exception, or a description such as "child process exited with code -9")."""
    if isinstance(exc, BaseException):
        kind, what = type(exc).__name__, f"{type(exc).__name__}: {exc}"
    else:
        kind, what = "WorkerLostError", exc
    message = f"worker pool failed while running the job: {what}"
    return Outcome(
        ok=False,
        text=encode_error(message, kind, "", job.attempt),
        error=message,
        retryable=True,
    )


def timeout_outcome(job: LeasedJob) -> Outcome:
    """The (retryable) outcome of an attempt that ran past its timeout."""
    seconds = (job.options.timeout_ms or 0) / 1000
    message = f"JobTimeoutError: the task ran longer than its timeout of {seconds:g} s"
    return Outcome(
        ok=False,
        text=encode_error(message, "JobTimeoutError", "", job.attempt),
        error=message,
        retryable=True,
    )


# States of a watched job (one running with a timeout on a thread).
_RUNNING, _DONE, _TIMED_OUT = 0, 1, 2


class _Watched:
    """A job running on a thread under a deadline; its state changes under
    the runner's lock, so exactly one of "the task returned" and "the time
    ran out" wins."""

    __slots__ = ("job", "replaceable", "replaced", "state", "stuck")

    def __init__(self, job: LeasedJob, replaceable: bool) -> None:
        self.job = job
        self.state = _RUNNING
        self.replaceable = replaceable  # a pool thread (else: run_here's caller)
        self.replaced = False  # a new pool thread was started in its place
        self.stuck = False  # counted in ThreadRunner.stuck


class ThreadRunner:
    """``size`` daemon threads running jobs of ``app`` in this process.

    Threads still running a job at shutdown are left to finish in the
    background (their leases were released; their results will be refused).
    A job past its timeout is reported as failed at once; see the module
    docstring for what happens to its thread (an ``async def`` task is
    cancelled on the event loop at its deadline, which frees the thread).
    Jobs run in ``runtime`` (the app's hooks and event loop; default: a new
    one), in their :class:`~scheduler.context.JobContext` naming ``worker_id``.
    """

    def __init__(
        self,
        app: TaskApp,
        size: int,
        report: Report,
        runtime: TaskRuntime | None = None,
        worker_id: str = "",
    ) -> None:
        self._app = app
        self._runtime = runtime or TaskRuntime(app)
        self._worker_id = worker_id
        self._size = size
        self._report = report
        self._jobs: queue.SimpleQueue[LeasedJob | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._deadlines: list[tuple[float, int, _Watched]] = []  # heap
        self._seq = itertools.count()
        self._stuck = 0  # replaced threads still running a timed-out task
        self._closed = False
        self._watchdog: threading.Thread | None = None
        self._names = itertools.count()
        for _ in range(size):
            self._start_thread()

    @property
    def broken(self) -> bool:
        """Thread runners do not break."""
        return False

    @property
    def stuck(self) -> int:
        """Threads still running a task that timed out (replaced by new ones)."""
        return self._stuck

    def submit(self, job: LeasedJob) -> None:
        """Queue ``job`` for the next free thread."""
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Tell the threads to exit once idle (does not wait)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for _ in range(self._size):
            self._jobs.put(None)

    def _start_thread(self) -> None:
        name = f"scheduler-job-{next(self._names)}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def run_here(self, job: LeasedJob) -> None:
        """Run ``job`` on the calling thread -- one outside the pool (the
        waiter's, which leased it: :mod:`~.waiter`) -- and report it as a
        pool thread would. The job takes one of the dispatcher's slots, not
        one of the pool's threads; past its timeout it is reported at once
        and counts as stuck until its task returns, but no thread is started
        in its place."""
        self._run_job(job, replaceable=False)

    def _run(self) -> None:
        jobs = self._jobs
        while (job := jobs.get()) is not None:
            if not self._run_job(job, replaceable=True):
                return

    def _run_job(self, job: LeasedJob, replaceable: bool) -> bool:
        """Run and report ``job``; False if this thread was replaced (a new
        one took its place after the job's timeout) and must end."""
        watched = self._watch(job, replaceable) if job.options.timeout_ms is not None else None
        try:  # run_task, inline: this is once per job on every pool thread
            outcome = run_task(
                self._app,
                job.task,
                job.payload,
                job.attempt,
                job_context_of(job, self._worker_id),
                self._runtime.reporter(job.queue, job.id, job.token),
                self._runtime,
            )
        except BaseException as exc:  # run_task does not raise; belt and braces
            outcome = crash_outcome(exc, job)
        if watched is not None:
            with self._cond:
                if watched.state == _TIMED_OUT:
                    # Already reported as timed out: drop this late result.
                    if watched.stuck:
                        self._stuck -= 1
                    return not watched.replaced
                watched.state = _DONE
        self._report(job, outcome)
        return True

    def _watch(self, job: LeasedJob, replaceable: bool) -> _Watched:
        watched = _Watched(job, replaceable)
        deadline = time.monotonic() + (job.options.timeout_ms or 0) / 1000
        with self._cond:
            heapq.heappush(self._deadlines, (deadline, next(self._seq), watched))
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch_deadlines, name="scheduler-timeouts", daemon=True
                )
                self._watchdog.start()
            self._cond.notify()
        return watched

    def _watch_deadlines(self) -> None:
        """Report jobs past their deadline (the runner's one watchdog thread)."""
        while True:
            expired: list[LeasedJob] = []
            with self._cond:
                while not expired:
                    if self._closed:
                        return
                    expired = self._pop_expired()
                    if not expired:
                        wait = self._deadlines[0][0] - time.monotonic() if self._deadlines else None
                        self._cond.wait(wait)
            for job in expired:
                log.warning(
                    "job %s task=%s queue=%s attempt=%d timed out after %g s",
                    job.id,
                    job.task,
                    job.queue,
                    job.attempt,
                    (job.options.timeout_ms or 0) / 1000,
                )
                self._report(job, timeout_outcome(job))

    def _pop_expired(self) -> list[LeasedJob]:
        """Mark the jobs past their deadline timed out (lock held); replace their
        threads while at most ``size`` are stuck."""
        now = time.monotonic()
        expired: list[LeasedJob] = []
        heap = self._deadlines
        while heap and (heap[0][2].state != _RUNNING or heap[0][0] <= now):
            _, _, watched = heapq.heappop(heap)
            if watched.state != _RUNNING:
                continue
            watched.state = _TIMED_OUT
            expired.append(watched.job)
            if self._stuck < self._size:
                watched.stuck = True
                self._stuck += 1
                if watched.replaceable:
                    watched.replaced = True
                    self._start_thread()
            else:
                log.warning(
                    "%d threads are stuck in timed-out tasks: this one keeps its slot "
                    "until its task returns",
                    self._stuck,
                )
        return expired
