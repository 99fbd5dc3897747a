"""How the worker tells about its jobs: the observer hook (used by
:mod:`scheduler.metrics`) and the log line of each finished job."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from scheduler.backend.codes import CompleteCode, FailCode
from scheduler.worker.execution import LeasedJob, Outcome

__all__ = ["WorkerObserver", "finish_outcome", "log_finished", "notify", "refused"]

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


def log_finished(
    job: LeasedJob, outcome: Outcome, code: CompleteCode | FailCode, took: float
) -> None:
    """Log a finished job's report: INFO for succeeded/retry/dead, WARNING when
    the result was refused (lease lost, or job gone)."""
    if not refused(code) and not log.isEnabledFor(logging.INFO):
        return
    where = f"job {job.id} task={job.task} queue={job.queue} attempt={job.attempt}"
    if refused(code):
        log.warning(
            "%s finished in %.3fs but its result was refused: %s",
            where,
            took,
            "job no longer exists"
            if code < 0
            else "lease lost (expired, cancelled or leased again)",
        )
    elif isinstance(code, CompleteCode):
        log.info("%s succeeded in %.3fs", where, took)
    elif code.retried:
        log.info("%s failed in %.3fs, will retry: %s", where, took, outcome.error)
    else:
        log.info("%s failed in %.3fs, dead: %s", where, took, outcome.error)
