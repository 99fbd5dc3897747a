"""Tasks (registered functions), their defaults, and job specifications."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, runtime_checkable

import attrs

from scheduler import defaults
from scheduler.errors import ValidationError
from scheduler.priority import backoff_delay
from scheduler.validation import shown

if TYPE_CHECKING:
    from scheduler.job import Job

__all__ = [
    "TASK_OPTIONS",
    "Backoff",
    "BackoffPolicy",
    "DelayFunction",
    "Delays",
    "EnqueueOptions",
    "Enqueuer",
    "JobSpec",
    "PerException",
    "Task",
    "backoff_policy",
    "retry_types",
]

log = logging.getLogger("scheduler.worker")

P = ParamSpec("P")
R = TypeVar("R")


def _seconds(_inst: object, attribute: attrs.Attribute[float], value: object) -> None:
    """A duration in seconds: a finite real number (not ``bool``) in
    ``[0, MAX_DURATION]`` (:data:`scheduler.defaults.MAX_DURATION`, 100 years)."""
    _real(attribute.name, value, 0.0, defaults.MAX_DURATION)


def _factor(_inst: object, attribute: attrs.Attribute[float], value: object) -> None:
    """Growth per attempt: a finite real number >= 1."""
    _real(attribute.name, value, 1.0, math.inf)


def _fraction(_inst: object, attribute: attrs.Attribute[float], value: object) -> None:
    """A fraction: a real number in ``[0, 1]``."""
    _real(attribute.name, value, 0.0, 1.0)


def _real(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"backoff {name} must be a real number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and low <= number <= high):
        raise ValidationError(f"backoff {name} must be in [{low:g}, {high:g}], got {shown(value)}")


@attrs.frozen
class Backoff:
    """Retry delay policy: capped exponential backoff with jitter.

    ``delay = min(maximum, base * factor**(attempt - 1)) * (1 - jitter * U)``
    with ``U`` uniform in [0, 1) (see :func:`scheduler.priority.backoff_delay`).
    Validated completely here, so a policy that was accepted never fails at
    retry time.

    Attributes:
        base: delay after the first failed attempt, seconds, in
            ``[0, maximum]``.
        maximum: upper bound of the delay, seconds, in ``[base, MAX_DURATION]``
            (:data:`scheduler.defaults.MAX_DURATION`, 100 years).
        factor: growth per attempt, finite, >= 1.
        jitter: randomised fraction, 0 (none) .. 1 (full jitter).

    Raises:
        ValidationError: a value is not a real number (``bool`` is not one),
            not finite, or out of its range, or ``base > maximum``.
    """

    base: float = attrs.field(default=defaults.BACKOFF_BASE, validator=_seconds)
    maximum: float = attrs.field(default=defaults.BACKOFF_MAXIMUM, validator=_seconds)
    factor: float = attrs.field(default=defaults.BACKOFF_FACTOR, validator=_factor)
    jitter: float = attrs.field(default=defaults.BACKOFF_JITTER, validator=_fraction)

    def __attrs_post_init__(self) -> None:
        if self.base > self.maximum:
            raise ValidationError(
                f"backoff base ({self.base:g} s) must not exceed maximum ({self.maximum:g} s)"
            )

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retrying after failed attempt ``attempt``
        (>= 1); ``exc`` (what the attempt raised) is not used."""
        return backoff_delay(
            attempt, self.base, self.maximum, factor=self.factor, jitter=self.jitter
        )


@runtime_checkable
class BackoffPolicy(Protocol):
    """A retry delay policy: :class:`Backoff`, :class:`Delays`,
    :class:`DelayFunction` or :class:`PerException` (see :func:`backoff_policy`)."""

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds before retrying after failed attempt ``attempt`` (>= 1),
        which raised ``exc`` (None: the worker does not know, e.g. a timeout
        or a child process that died)."""
        ...


def _delays(_inst: object, _attribute: attrs.Attribute[tuple[float, ...]], value: object) -> None:
    if not value:
        raise ValidationError("backoff delays must not be empty")
    for item in value:  # type: ignore[attr-defined]  # a tuple after the converter
        _real("delay", item, 0.0, defaults.MAX_DURATION)


@attrs.frozen
class Delays:
    """Explicit retry delays: ``delays[attempt - 1]`` seconds after failed
    attempt ``attempt``; the last one repeats (``Delays((1, 5, 30))``: 1 s,
    5 s, then 30 s for every later retry), like Sidekiq's ``sidekiq_retry_in``
    returning a fixed schedule.

    Raises:
        ValidationError: empty, or a delay is not seconds in ``[0, MAX_DURATION]``.
    """

    delays: tuple[float, ...] = attrs.field(converter=tuple, validator=_delays)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """``delays[attempt - 1]`` (the last one once past the end)."""
        return float(self.delays[min(max(attempt, 1), len(self.delays)) - 1])


@attrs.frozen
class DelayFunction:
    """Retry delays computed by ``fn(attempt, exception) -> seconds``
    (``exception`` is None when the worker does not have it: a timeout, a
    dead child process). A function that raises or returns anything but
    seconds in ``[0, MAX_DURATION]`` is logged and ``fallback`` used instead:
    a retry is never lost to a bug in the policy.
    """

    fn: Callable[[int, BaseException | None], float]
    fallback: Backoff = attrs.field(factory=Backoff)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """``fn(attempt, exc)``, or ``fallback``'s delay if that is not valid."""
        try:
            value = self.fn(attempt, exc)
            _real("delay", value, 0.0, defaults.MAX_DURATION)
            return float(value)
        except Exception:  # the user's function: fall back, do not lose the retry
            log.exception("backoff function %r failed; using the default backoff", self.fn)
            return self.fallback.delay(attempt, exc)


@attrs.frozen
class PerException:
    """A policy per exception type: the first entry of ``policies`` whose type
    the exception is an instance of decides, else ``default`` (also when the
    worker does not have the exception: timeouts, dead children).

    Build it with :func:`backoff_policy` from a mapping
    ``{ConnectionError: [1, 5, 30], Exception: Backoff()}``.
    """

    policies: tuple[tuple[type[BaseException], BackoffPolicy], ...]
    default: BackoffPolicy = attrs.field(factory=Backoff)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """The delay of the policy of ``exc``'s type."""
        if exc is not None:
            for kind, policy in self.policies:
                if isinstance(exc, kind):
                    return policy.delay(attempt, exc)
        return self.default.delay(attempt, exc)


def backoff_policy(value: object) -> BackoffPolicy:
    """A task's ``backoff=`` as a policy:

    * a :class:`Backoff` (or any :class:`BackoffPolicy`): as is;
    * a sequence of seconds: :class:`Delays`;
    * a callable ``(attempt, exception) -> seconds``: :class:`DelayFunction`;
    * a mapping ``{exception type: any of the above}``: :class:`PerException`,
      in the mapping's order; exceptions of no listed type get the default
      :class:`Backoff`.

    Raises:
        ValidationError: anything else, or a bad entry (checked now, at
            registration).
    """
    if isinstance(value, BackoffPolicy):
        return value
    if isinstance(value, Mapping):
        policies: list[tuple[type[BaseException], BackoffPolicy]] = []
        for kind, policy in value.items():
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ValidationError(f"backoff keys must be exception classes, got {shown(kind)}")
            if isinstance(policy, Mapping):
                raise ValidationError("backoff per exception type cannot be nested")
            policies.append((kind, backoff_policy(policy)))
        return PerException(tuple(policies))
    if isinstance(value, list | tuple):
        return Delays(tuple(value))
    if callable(value):
        return DelayFunction(value)
    raise ValidationError(
        "backoff must be a Backoff, a sequence of seconds, a function (attempt, "
        f"exception) -> seconds or a mapping of them by exception type, got {shown(value)}"
    )


def retry_types(value: object) -> tuple[type[BaseException], ...]:
    """``retry_on`` as a tuple of exception classes: a bare class or a
    tuple/list of them (an empty tuple: never retry).

    Raises:
        ValidationError: anything else (an instance, a string, a non-exception
            class), so a bad ``retry_on`` is found at registration, not at
            the first failure.
    """
    items = tuple(value) if isinstance(value, tuple | list) else (value,)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ValidationError(
                f"retry_on must be an exception class or a tuple of them, got {shown(value)}"
            )
    return items


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
            ``time`` is the estimated run time in seconds, or ``"auto"``:
            learned from the task's past runs (:mod:`scheduler.learning`).
            ``resource`` is also the capacity the job takes on a worker
            that declares a capacity (``Worker(capacity=...)``).
        alpha, min_samples: for ``time="auto"``: ``estimated_time = mean *
            (1 + alpha * cv)``, used once the task has ``min_samples`` runs.
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
    time: float | str | None = None
    resource: float | None = None
    alpha: float | None = None
    min_samples: int | None = None
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

    def with_meta(self, **items: Any) -> JobSpec:
        """A copy whose ``options.meta`` has ``items`` added (for
        ``before_enqueue`` hooks: trace context, tenant, ...)."""
        meta = {**(self.options.meta or {}), **items}
        return attrs.evolve(self, options=attrs.evolve(self.options, meta=meta))


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
        weight, time, resource: default priority inputs (``time`` in seconds,
            or ``"auto"``: learned, see :mod:`scheduler.learning`).
        alpha, min_samples: learned-time settings (see :class:`EnqueueOptions`).
        priority: default explicit priority, or None to use the formula.
        max_attempts: default leases allowed before dead.
        lease: default lease duration, seconds.
        timeout: execution time limit of one attempt, seconds; None = no
            limit. When it passes the attempt fails with
            :class:`scheduler.errors.JobTimeoutError` (retried or dead by
            ``max_attempts``).
        result_ttl: default result retention, seconds.
        backoff: retry delay policy (applied by the worker): a :class:`Backoff`,
            a sequence of delays, a function ``(attempt, exception) -> seconds``
            or a mapping of these by exception type (:func:`backoff_policy`).
        retry_on: exception classes that cause a retry (a bare class or a
            tuple); others go dead at once. Default ``(Exception,)``.

    Raises:
        ValidationError: ``backoff`` is not a policy (:func:`backoff_policy`), or
            ``retry_on`` is not exception classes (checked on construction
            and on assignment).
    """

    app: Enqueuer
    fn: Callable[P, R]
    name: str
    queue: str
    weight: float = defaults.WEIGHT
    time: float | str = defaults.TIME
    resource: float = defaults.RESOURCE
    priority: float | None = None
    alpha: float = defaults.ALPHA
    min_samples: int = defaults.MIN_SAMPLES
    max_attempts: int = defaults.MAX_ATTEMPTS
    lease: float = defaults.LEASE
    timeout: float | None = defaults.TIMEOUT
    result_ttl: float = defaults.RESULT_TTL
    backoff: BackoffPolicy = attrs.field(factory=Backoff, converter=backoff_policy)
    retry_on: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=retry_types
    )

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


#: The options of ``@app.task(...)``: every field of :class:`Task` but the
#: app and the function -- one list for registration and construction.
TASK_OPTIONS: frozenset[str] = frozenset(attrs.fields_dict(Task)) - {"app", "fn"}


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
