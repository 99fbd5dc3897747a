"""The running job's context: :func:`current_job`.

While a worker runs a job's task -- in a pool thread, in a process-pool
child, or as a coroutine on the worker's event loop -- a
:class:`contextvars.ContextVar` holds a :class:`JobContext` describing it.
A task reads it with :func:`current_job`; nothing has to be declared in the
task's signature (the one way to reach the context, so a task's arguments
stay exactly what its caller enqueued)::

    @app.task
    def send(address: str) -> None:
        job = current_job()
        log.info("attempt %d of %d for job %s", job.attempt, job.max_attempts, job.id)

A context variable follows the code that runs the job: threads started by
the task do not inherit it (pass the context on, or use
:func:`contextvars.copy_context`), while ``asyncio`` tasks created by a
coroutine task do (they copy the context when created).

Pure: no Redis, no app. Progress reporting (:func:`scheduler.control.set_progress`)
goes through a callback the worker puts next to the context.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from scheduler.errors import SchedulerError

__all__ = [
    "JobContext",
    "JobToken",
    "NoJobContextError",
    "ProgressReporter",
    "current_job",
    "enter_job",
    "job_context",
    "leave_job",
    "progress_reporter",
]


class NoJobContextError(SchedulerError, LookupError):
    """:func:`current_job` (or :func:`scheduler.control.set_progress`) was
    called outside a job run by a worker."""


#: The read-only empty metadata, shared (most jobs have none).
_NO_META: Mapping[str, Any] = MappingProxyType({})


def _read_only(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(meta)) if meta else _NO_META


@attrs.frozen
class JobContext:
    """What a running task may know about its job (picklable: process-pool
    children receive it from the worker).

    Times are seconds since the Unix epoch (``time.time()``), server clock
    for what Redis recorded, worker clock for what the worker computed.

    Attributes:
        id: the job id.
        task: the task name.
        queue: the queue name.
        attempt: this attempt's number, 1-based (``1`` on the first run).
        max_attempts: attempts allowed before the job goes dead; this is the
            last one when ``attempt == max_attempts``.
        meta: the job's metadata (a JSON object; cron jobs carry their
            schedule id and fire time here); a read-only mapping.
        enqueued_at: when the job was enqueued (server clock).
        eta: when the job became (or was due to become) ready: its ETA for a
            delayed job or a retry, else the enqueue time (server clock).
        lease_deadline: when this attempt's lease expires unless the worker
            renews it (it does, every third of the lease, while the task runs);
            computed when the attempt started (worker clock).
        deadline: when this attempt's execution timeout (``timeout``) ends
            it, or None without a timeout (worker clock).
        priority: the job's priority.
        worker_id: the worker running it.
    """

    id: str
    task: str
    queue: str
    attempt: int
    max_attempts: int
    meta: Mapping[str, Any] = attrs.field(converter=_read_only)
    enqueued_at: float
    eta: float
    lease_deadline: float
    deadline: float | None = None
    priority: float = 0.0
    worker_id: str = ""

    def __reduce__(self) -> tuple[type[JobContext], tuple[Any, ...]]:
        # The read-only view of ``meta`` does not pickle; its dict does.
        values = attrs.astuple(self, recurse=False)
        return (type(self), tuple(dict(v) if isinstance(v, Mapping) else v for v in values))

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure of this attempt makes the job dead."""
        return self.attempt >= self.max_attempts

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (negative once past), or None
        without a timeout."""
        return None if self.deadline is None else self.deadline - time.time()


#: Reports progress of the current job: ``(value, message)``; set by the worker.
ProgressReporter = Callable[[float | None, str], None]

#: The running job and its progress callback, in one variable: setting and
#: resetting it is the one context change per job on the worker's hot path.
_current: contextvars.ContextVar[tuple[JobContext, ProgressReporter | None] | None] = (
    contextvars.ContextVar("scheduler_current_job", default=None)
)

#: What :func:`enter_job` returns and :func:`leave_job` takes.
JobToken = contextvars.Token[tuple[JobContext, ProgressReporter | None] | None]


def current_job() -> JobContext:
    """The context of the job whose task is running in this thread or coroutine.

    Raises:
        NoJobContextError: called outside a job run by a worker (e.g. when
            the task function is called directly).
    """
    current = _current.get()
    if current is None:
        raise NoJobContextError("current_job() is only available while a worker runs a job")
    return current[0]


def progress_reporter() -> ProgressReporter:
    """The progress callback of the running job.

    Raises:
        NoJobContextError: outside a job, or its worker cannot report progress.
    """
    current = _current.get()
    reporter = None if current is None else current[1]
    if reporter is None:
        raise NoJobContextError("set_progress() is only available while a worker runs a job")
    return reporter


@contextlib.contextmanager
def job_context(ctx: JobContext, reporter: ProgressReporter | None = None) -> Iterator[JobContext]:
    """Set ``ctx`` (and its progress ``reporter``) as the current job for the
    ``with`` block; restores what was there before on exit (used by the
    worker; also handy to call a task directly in a test)."""
    token = _current.set((ctx, reporter))
    try:
        yield ctx
    finally:
        _current.reset(token)


def enter_job(ctx: JobContext, reporter: ProgressReporter | None = None) -> JobToken:
    """Set ``ctx`` (and its progress ``reporter``) as the current job until
    :func:`leave_job` is called with the returned token, in the same thread
    or coroutine (:func:`job_context` without a generator: the worker's hot
    path)."""
    return _current.set((ctx, reporter))


def leave_job(token: JobToken) -> None:
    """Restore the current job from before the :func:`enter_job` that
    returned ``token``.

    Raises:
        ValueError: ``token`` was made in another context, or used already.
    """
    _current.reset(token)
