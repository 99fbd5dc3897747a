"""Tasks (registered functions), their defaults, and job specifications."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

import attrs

from scheduler import defaults
from scheduler.priority import backoff_delay

if TYPE_CHECKING:
    from scheduler.job import Job

__all__ = ["Backoff", "EnqueueOptions", "Enqueuer", "JobSpec", "Task"]

P = ParamSpec("P")
R = TypeVar("R")


def _nonneg(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class Backoff:
    """Retry delay policy: capped exponential backoff with jitter.

    ``delay = min(maximum, base * factor**(attempt - 1)) * (1 - jitter * U)``
    with ``U`` uniform in [0, 1) (see :func:`scheduler.priority.backoff_delay`).

    Attributes:
        base: delay after the first failed attempt, seconds.
        maximum: upper bound of the delay, seconds.
        factor: growth per attempt.
        jitter: randomised fraction, 0 (none) .. 1 (full jitter).
    """

    base: float = attrs.field(default=defaults.BACKOFF_BASE, validator=_nonneg)
    maximum: float = attrs.field(default=defaults.BACKOFF_MAXIMUM, validator=_nonneg)
    factor: float = attrs.field(default=defaults.BACKOFF_FACTOR, validator=_nonneg)
    jitter: float = attrs.field(default=defaults.BACKOFF_JITTER, validator=_nonneg)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retrying after failed attempt ``attempt`` (>= 1)."""
        return backoff_delay(
            attempt, self.base, self.maximum, factor=self.factor, jitter=self.jitter
        )


@attrs.frozen(kw_only=True)
class EnqueueOptions:
    """Per-job options; ``None`` means "use the task's (or app's) default".

    Attributes:
        queue: queue name.
        job_id: caller-chosen id, doubling as idempotency key: enqueueing an
            id that exists returns the existing job and writes nothing.
        delay: run no earlier than this long after enqueue (server clock);
            seconds or ``timedelta``.
        eta: run no earlier than this time (``datetime``; naive = local time).
        priority: explicit priority (overrides the formula).
        weight, time, resource: inputs of ``priority = weight * time / resource``;
            ``time`` is the estimated run time in seconds.
        max_attempts: leases allowed before the job goes dead.
        lease: lease duration (visibility timeout), seconds or ``timedelta``.
        timeout: execution time limit of this job's attempts, seconds or
            ``timedelta``; ``math.inf`` lifts the task's limit for this job
            (None, as everywhere here, means "the task's").
        result_ttl: how long the result is kept after success, seconds.
        meta: JSON object of metadata kept with the job (e.g. tags, origin).
    """

    queue: str | None = None
    job_id: str | None = None
    delay: float | timedelta | None = None
    eta: datetime | None = None
    priority: float | None = None
    weight: float | None = None
    time: float | None = None
    resource: float | None = None
    max_attempts: int | None = None
    lease: float | timedelta | None = None
    timeout: float | timedelta | None = None
    result_ttl: float | timedelta | None = None
    meta: dict[str, Any] | None = None


@attrs.frozen
class JobSpec:
    """A job to enqueue, for :meth:`scheduler.Scheduler.enqueue_many`.

    Attributes:
        task: task name (``"module:function"``) or a :class:`Task`.
        args: positional arguments (JSON-serializable).
        kwargs: keyword arguments (JSON-serializable).
        options: per-job options.
    """

    task: str | Task[Any, Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    options: EnqueueOptions = attrs.field(factory=EnqueueOptions)


class Enqueuer(Protocol):
    """What a task needs of its app: enqueueing (:class:`scheduler.Scheduler`
    is one). Keeps this module below the app in the import graph."""

    def enqueue(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        options: EnqueueOptions | None = None,
        **option_kwargs: Any,
    ) -> Job:
        """Enqueue one job (see :meth:`scheduler.Scheduler.enqueue`)."""
        ...


@attrs.define(eq=False)
class Task(Generic[P, R]):
    """A function registered on a :class:`scheduler.Scheduler` with its defaults.

    Calling the task runs the function directly. :meth:`enqueue` schedules it.

    Attributes:
        app: the owning scheduler (anything that can enqueue).
        fn: the function (sync or ``async def``).
        name: task name used in job records (default ``module:qualname``).
        queue: default queue.
        weight, time, resource: default priority inputs (``time`` in seconds).
        priority: default explicit priority, or None to use the formula.
        max_attempts: default leases allowed before dead.
        lease: default lease duration, seconds.
        timeout: execution time limit of one attempt, seconds; None = no
            limit. When it passes the attempt fails with
            :class:`scheduler.errors.JobTimeoutError` (retried or dead by
            ``max_attempts``).
        result_ttl: default result retention, seconds.
        backoff: retry delay policy (applied by the worker).
        retry_on: exception types that cause a retry; others go dead at once.
            Default ``(Exception,)``: everything is retried.
    """

    app: Enqueuer
    fn: Callable[P, R]
    name: str
    queue: str
    weight: float = defaults.WEIGHT
    time: float = defaults.TIME
    resource: float = defaults.RESOURCE
    priority: float | None = None
    max_attempts: int = defaults.MAX_ATTEMPTS
    lease: float = defaults.LEASE
    timeout: float | None = defaults.TIMEOUT
    result_ttl: float = defaults.RESULT_TTL
    backoff: Backoff = attrs.field(factory=Backoff)
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue a job running this task with these arguments, now.

        Raises:
            ValidationError: bad arguments (see :meth:`scheduler.Scheduler.enqueue`).
        """
        return self.app.enqueue(self, args=args, kwargs=kwargs)

    def options(self, **options: Any) -> BoundTask[P, R]:
        """Return this task with per-job options (see :class:`EnqueueOptions`)::

        task.options(delay=30, priority=5).enqueue(x)
        """
        return BoundTask(self, EnqueueOptions(**options))

    def spec(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        """Return a :class:`JobSpec` for :meth:`scheduler.Scheduler.enqueue_many`."""
        return JobSpec(self, tuple(args), dict(kwargs))


@attrs.frozen
class BoundTask(Generic[P, R]):
    """A task with per-job options, from :meth:`Task.options`."""

    task: Task[P, R]
    opts: EnqueueOptions

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Enqueue with the bound options."""
        return self.task.app.enqueue(self.task, args=args, kwargs=kwargs, options=self.opts)

    def spec(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        """A :class:`JobSpec` with the bound options."""
        return JobSpec(self.task, tuple(args), dict(kwargs), self.opts)
