"""How the worker tells about itself and its jobs: the observer hook (used
by :mod:`scheduler.metrics`), the start-up line, and the log line of each
finished job.

Log levels: a job that succeeded is one INFO line (its start is DEBUG); a
failure that will be retried is WARNING; a job that went dead is ERROR,
with the traceback of its last attempt; a result refused because the lease
was lost is WARNING. Every job line carries ``job_id``, ``task``, ``queue``,
``attempt``, ``outcome`` and ``duration`` (seconds) as record attributes, so
``--log-format json`` (:mod:`scheduler.cli.runtime`) prints them as fields.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from scheduler.backend.codes import CompleteCode, FailCode
from scheduler.serialization import decode_error
from scheduler.worker.execution import LeasedJob, Outcome, TaskApp

__all__ = [
    "Observers",
    "WorkerObserver",
    "default_queues",
    "finish_outcome",
    "log_finished",
    "log_started",
    "notify",
    "package_version",
    "refused",
]

log = logging.getLogger("scheduler.worker")


class WorkerObserver(Protocol):
    """Callbacks a :class:`scheduler.Worker` makes about its jobs (e.g. for metrics).

    All are called on the worker's dispatcher thread, so they must be quick
    and must not block; an exception they raise is logged and ignored.

    * ``on_leased(job)``: a job was leased (it may wait in the worker's
      prefetch buffer before it starts).
    * ``on_finished(job, outcome, duration)``: a job's report was applied;
      ``outcome`` is ``"succeeded"``, ``"retried"`` (failed, will retry),
      ``"dead"`` (failed, dead-lettered) or ``"refused"`` (the lease was lost,
      the result was not recorded); ``duration`` is the run time in seconds.
    * ``on_released(job)``: a job was given back to its queue at shutdown.
    * ``on_lease_lost(job)``: the worker found the job's lease no longer
      valid (expired and requeued, cancelled, purged) when reporting or
      releasing it.
    """

    def on_leased(self, job: LeasedJob) -> None: ...

    def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None: ...

    def on_released(self, job: LeasedJob) -> None: ...

    def on_lease_lost(self, job: LeasedJob) -> None: ...


def notify(observer: WorkerObserver | None, callback: str, *args: Any) -> None:
    """Call ``observer.<callback>(*args)`` if there is an observer; log its errors."""
    if observer is None:
        return
    try:
        getattr(observer, callback)(*args)
    except Exception:
        log.exception("worker observer %s failed", callback)


class Observers:
    """Several observers as one (:class:`WorkerObserver`): each callback goes
    to every observer in order, and one that raises (logged) does not keep it
    from the others -- like Dramatiq's ``emit_after``. An observer may define
    only the callbacks it wants.

    Args:
        observers: the list to fan out to (kept by reference: observers
            appended later, e.g. by :func:`scheduler.metrics.start_metrics_server`,
            are called too).
    """

    def __init__(self, observers: list[WorkerObserver]) -> None:
        self.observers = observers

    def _each(self, callback: str, *args: Any) -> None:
        for observer in self.observers:
            if hasattr(observer, callback):
                notify(observer, callback, *args)

    def on_leased(self, job: LeasedJob) -> None:
        """Fan out ``on_leased``."""
        self._each("on_leased", job)

    def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None:
        """Fan out ``on_finished``."""
        self._each("on_finished", job, outcome, duration)

    def on_released(self, job: LeasedJob) -> None:
        """Fan out ``on_released``."""
        self._each("on_released", job)

    def on_lease_lost(self, job: LeasedJob) -> None:
        """Fan out ``on_lease_lost``."""
        self._each("on_lease_lost", job)


def refused(code: CompleteCode | FailCode) -> bool:
    """The report was refused: the lease was lost (``STALE``) or the job is gone."""
    # Both families share STALE = 0 and GONE = -1.
    return code <= 0


def finish_outcome(code: CompleteCode | FailCode) -> str:
    """The ``on_finished`` outcome name for a report's reply ``code`` (of
    ``complete.lua`` or ``fail.lua``; a repeated call answers with the
    outcome it already applied, so nothing is re-derived here)."""
    if refused(code):
        return "refused"
    if isinstance(code, CompleteCode):
        return "succeeded"
    return "retried" if code.retried else "dead"


class QueuedApp(TaskApp, Protocol):
    """What :func:`default_queues` needs of an app: its tasks and default queue."""

    @property
    def default_queue(self) -> str:
        """Queue of tasks and jobs that do not name one."""
        ...


def default_queues(app: QueuedApp) -> list[str]:
    """The queues a worker serves when none are given: the app's default
    queue, then every other queue its tasks declare, in the order the tasks
    were registered."""
    found = dict.fromkeys([app.default_queue, *(t.queue for t in app.tasks.values())])
    return list(found)


def package_version() -> str:
    """This package's installed version (``"unknown"`` when not installed)."""
    try:
        return importlib.metadata.version("redis-priority-scheduler")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def log_started(
    *,
    worker_id: str,
    server: str,
    prefix: str,
    queues: Sequence[str],
    queues_from_tasks: bool,
    tasks: Sequence[str],
    pool: str,
    concurrency: int,
    prefetch: int,
) -> None:
    """The worker's start-up line: the Redis server (no password), prefix,
    queues (and whether they came from the app's tasks), tasks, pool,
    concurrency and version."""
    log.info(
        "worker %s started: redis=%s prefix=%s queues=%s%s tasks=%s pool=%s "
        "concurrency=%d prefetch=%d version=%s",
        worker_id,
        server,
        prefix,
        ",".join(queues),
        " (every queue the app's tasks declare; choose with --queues)" if queues_from_tasks else "",
        ",".join(tasks) or "-",
        pool,
        concurrency,
        prefetch,
        package_version(),
    )


def log_finished(
    job: LeasedJob, outcome: Outcome, code: CompleteCode | FailCode, took: float
) -> None:
    """Log a finished job's report (one line): INFO succeeded, WARNING will
    retry or refused (lease lost, or job gone), ERROR dead (with the
    traceback of the attempt)."""
    name = finish_outcome(code)
    level = {"succeeded": logging.INFO, "dead": logging.ERROR}.get(name, logging.WARNING)
    if not log.isEnabledFor(level):
        return
    extra = {
        "job_id": job.id,
        "task": job.task,
        "queue": job.queue,
        "attempt": job.attempt,
        "outcome": name,
        "duration": round(took, 6),
    }
    where = f"job {job.id} task={job.task} queue={job.queue} attempt={job.attempt}"
    if name == "refused":
        why = (
            "job no longer exists"
            if code < 0
            else "lease lost (expired, cancelled or leased again)"
        )
        log.warning(
            "%s finished in %.3fs but its result was refused: %s", where, took, why, extra=extra
        )
    elif name == "succeeded":
        log.info("%s succeeded in %.3fs", where, took, extra=extra)
    elif name == "retried":
        log.warning("%s failed in %.3fs, will retry: %s", where, took, outcome.error, extra=extra)
    else:
        tb = _traceback(outcome)
        log.error(
            "%s failed in %.3fs, dead: %s%s",
            where,
            took,
            outcome.error,
            _indent(tb),
            extra=extra,
        )


def _traceback(outcome: Outcome) -> str:
    return str(decode_error(outcome.text).get("traceback") or "")


def _indent(tb: str) -> str:
    """The task's traceback, each line indented under the log line (so a
    traceback of the worker itself, which starts a line, stands out)."""
    return "".join(f"\n    {line}" for line in tb.rstrip().splitlines())
