"""How the worker tells about its jobs: the observer hook (used by
:mod:`scheduler.metrics`) and the log line of each finished job."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from scheduler.worker.execution import LeasedJob, Outcome

__all__ = ["WorkerObserver", "finish_outcome", "log_finished", "notify"]

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


def finish_outcome(job: LeasedJob, ok: bool, retryable: bool, code: int) -> str:
    """The ``on_finished`` outcome name for a report's reply ``code``."""
    if code <= 0:
        return "refused"
    if ok:
        return "succeeded"
    if code == 1:
        return "retried"
    if code == 2:
        return "dead"
    # 3: applied by an earlier run of the same call; the same rule as fail.lua
    return "retried" if retryable and job.attempt < job.options.max_attempts else "dead"


def log_finished(job: LeasedJob, outcome: Outcome, code: int, took: float) -> None:
    """Log a finished job's report: INFO for succeeded/retry/dead, WARNING when
    the result was refused (``code`` <= 0: lease lost, or job gone)."""
    if code > 0 and not log.isEnabledFor(logging.INFO):
        return
    where = f"job {job.id} task={job.task} queue={job.queue} attempt={job.attempt}"
    if code <= 0:
        log.warning(
            "%s finished in %.3fs but its result was refused: %s",
            where,
            took,
            "job no longer exists"
            if code < 0
            else "lease lost (expired, cancelled or leased again)",
        )
    elif outcome.ok:
        log.info("%s succeeded in %.3fs", where, took)
    elif code == 1:
        log.info("%s failed in %.3fs, will retry: %s", where, took, outcome.error)
    else:
        log.info("%s failed in %.3fs, dead: %s", where, took, outcome.error)
