"""The application object: tasks, enqueue, queue control, job lookup."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, Unpack, cast, overload

import attrs
import redis
import redis.asyncio as aredis

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.aio import AsyncBackend, async_client_from
from scheduler.backend.connection import client_from_url
from scheduler.backend.keys import GlobalKeys, QueueKeys
from scheduler.backend.scripts import EnqueueItem, Scripts
from scheduler.backend.topology import RedisClient
from scheduler.batching import Batch, batching, current_batch
from scheduler.building import (
    JobBuilder,
    JobDefaults,
    check_attempts,
    check_lease,
    check_timeout,
)
from scheduler.codec import DEFAULT_CODEC, JSONCodec
from scheduler.cron import Schedule, ScheduleOptions, ScheduleStore
from scheduler.errors import JobNotFoundError, UnknownOptionError, ValidationError
from scheduler.job import Job
from scheduler.learning import resolve_inputs
from scheduler.limits import QueueLimits, Rate, check_concurrency, parse_rate
from scheduler.middleware import Hooks
from scheduler.priority import validate_aging_rate
from scheduler.task import Backoff, EnqueueOptions, JobSpec, Task
from scheduler.timeutil import seconds
from scheduler.validation import (
    resolve_actor,
    shown,
    validate_job_id,
    validate_queue_name,
    validate_task_name,
)

__all__ = ["BeforeEnqueue", "Scheduler"]

#: A producer hook: called with each job's :class:`JobSpec` before it is
#: validated; returns a changed spec (e.g. ``spec.with_meta(trace=...)``) or
#: None to keep it; raises to refuse the job (nothing is written).
BeforeEnqueue = Callable[[JobSpec], JobSpec | None]

P = ParamSpec("P")
R = TypeVar("R")

#: The job sets :meth:`Scheduler.purge` empties (``done`` = succeeded and
#: cancelled records; ``delayed`` includes failed jobs awaiting a retry).
PURGE_STATES = ("ready", "delayed", "leased", "dead", "done")

#: Jobs per enqueue script call in :meth:`Scheduler.enqueue_many`.
BULK_BATCH = defaults.BULK_BATCH


class Scheduler:
    """A scheduler bound to one Redis server (or cluster node set) and key prefix.

    Tasks are registered on it with :meth:`task`; jobs are enqueued with
    :meth:`enqueue` / :meth:`enqueue_many` or ``task.enqueue(...)``; workers
    run with :class:`scheduler.Worker` or ``scheduler worker module:app``.

    The app composes a :class:`scheduler.backend.Backend` (the storage
    layer: ``app.backend``) and a :class:`scheduler.building.JobBuilder`
    (``app.builder``); ``redis``, ``scripts``, ``keys`` and
    :meth:`queue_keys` are shortcuts to the backend's parts.

    Args:
        client: a ``redis.Redis`` client (a single server, or
            ``Sentinel(...).master_for(service)``) or a
            ``redis.cluster.RedisCluster`` (bytes or decoded responses).
        prefix: key prefix, see :mod:`scheduler.backend.keys`.
        default_queue: queue of tasks that do not name one.
        max_payload_bytes: limit on encoded ``[args, kwargs]`` and results, bytes.
        events_maxlen: approximate length cap of each queue's event stream;
            0 disables events.
        max_attempts: default leases before a job goes dead (>= 1).
        lease: default lease duration (visibility timeout), seconds.
        timeout: default execution time limit of one attempt, seconds;
            None (the default) = no limit (see :data:`scheduler.defaults.TIMEOUT`).
        result_ttl: default retention of succeeded/cancelled records, seconds.
        dead_ttl: retention of dead records, seconds; None keeps them forever.
        backoff: default retry delay policy.
        codec: how arguments and results are stored (default plain JSON; a
            :class:`scheduler.JSONCodec` adds tagged types such as
            ``datetime``, ``UUID``, ``Decimal``, dataclasses). Producers and
            workers of one app must use the same codec.
        before_enqueue: producer hooks, in order (see :meth:`before_enqueue`).
        async_client: the ``redis.asyncio`` client of :meth:`aenqueue` and
            ``Job.aresult`` (default: one made from ``client``'s settings on
            first use; give one on Cluster or Sentinel).

    Attributes:
        hooks: middleware around every task execution and worker lifecycle
            hooks (:class:`scheduler.middleware.Hooks`): ``@app.hooks.middleware``,
            ``@app.hooks.on_startup``, ``@app.hooks.on_shutdown``.

    Raises:
        ValidationError: an argument is out of range.
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = defaults.PREFIX,
        default_queue: str = defaults.QUEUE,
        max_payload_bytes: int = defaults.MAX_PAYLOAD_BYTES,
        events_maxlen: int = defaults.EVENTS_MAXLEN,
        max_attempts: int = defaults.MAX_ATTEMPTS,
        lease: float | timedelta = defaults.LEASE,
        timeout: float | timedelta | None = defaults.TIMEOUT,
        result_ttl: float | timedelta = defaults.RESULT_TTL,
        dead_ttl: float | timedelta | None = defaults.DEAD_TTL,
        backoff: Backoff | None = None,
        codec: JSONCodec | None = None,
        before_enqueue: Iterable[BeforeEnqueue] = (),
        async_client: aredis.Redis | None = None,
    ) -> None:
        if max_payload_bytes < 1:
            raise ValidationError("max_payload_bytes must be >= 1")
        self.backend = Backend(client, prefix=prefix, events_maxlen=events_maxlen)
        self.job_defaults = JobDefaults(
            queue=validate_queue_name(default_queue),
            max_attempts=check_attempts(max_attempts),
            lease=check_lease(lease),
            timeout=check_timeout(timeout),
            result_ttl=seconds(result_ttl, "result_ttl"),
            dead_ttl=None if dead_ttl is None else seconds(dead_ttl, "dead_ttl"),
            backoff=_check_backoff(Backoff() if backoff is None else backoff),
            max_payload_bytes=max_payload_bytes,
        )
        if codec is not None and not isinstance(codec, JSONCodec):
            raise ValidationError(f"codec must be a JSONCodec, got {shown(codec)}")
        self.codec = DEFAULT_CODEC if codec is None else codec
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.builder = JobBuilder(self.tasks, self.job_defaults, codec=self.codec)
        #: Producer hooks (:meth:`before_enqueue`), in order.
        self.enqueue_hooks: list[BeforeEnqueue] = []
        for hook in before_enqueue:
            self.before_enqueue(hook)
        self._async_client = async_client
        self.hooks = Hooks()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Scheduler:
        """Create a scheduler from a Redis URL (``redis://``, ``rediss://`` for TLS,
        ``unix://``; user/password for AUTH/ACL in the URL). Other keyword
        arguments go to :class:`Scheduler`."""
        return cls(client_from_url(url), **kwargs)

    def close(self) -> None:
        """Close the Redis client's connections (and those of script calls)."""
        self.backend.close()

    @functools.cached_property
    def aio(self) -> AsyncBackend:
        """The storage layer on ``redis.asyncio`` (:meth:`aenqueue`,
        ``Job.aresult``), made on first use. Its connections belong to the
        event loop that first uses them: use an app from one loop, or call
        :meth:`aclose` before using it from another.

        Raises:
            ValidationError: no ``async_client`` was given and ``client``'s
                settings cannot be copied (Cluster, Sentinel).
        """
        client = self._async_client
        return AsyncBackend(
            client if client is not None else async_client_from(self.redis),
            self.scripts,
            self.keys.queues,
        )

    async def aclose(self) -> None:
        """Close the async client's connections (a later async call opens
        new ones, on the loop it runs on)."""
        aio = self.__dict__.pop("aio", None)
        if aio is not None:
            await aio.aclose()

    def _aio(self) -> AsyncBackend:
        return self.aio

    def _job(self, job_id: str, queue: str) -> Job:
        return Job(self.backend, job_id, queue, codec=self.codec, aio=self._aio)

    # -- shortcuts to the storage layer and the defaults -----------------------

    @property
    def redis(self) -> redis.Redis:
        """The redis-py client (``app.backend.client``)."""
        return self.backend.client

    @property
    def scripts(self) -> Scripts:
        """The job scripts (``app.backend.scripts``)."""
        return self.backend.scripts

    @property
    def keys(self) -> GlobalKeys:
        """The registry key names (``app.backend.keys``)."""
        return self.backend.keys

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self.backend.prefix

    @property
    def default_queue(self) -> str:
        """Queue of tasks and jobs that do not name one."""
        return self.job_defaults.queue

    @property
    def max_payload_bytes(self) -> int:
        """Limit on encoded ``[args, kwargs]`` and results, bytes."""
        return self.job_defaults.max_payload_bytes

    @property
    def max_attempts(self) -> int:
        """Default leases before a job goes dead."""
        return self.job_defaults.max_attempts

    @property
    def lease(self) -> float:
        """Default lease duration, seconds."""
        return self.job_defaults.lease

    @property
    def result_ttl(self) -> float:
        """Default retention of succeeded/cancelled records, seconds."""
        return self.job_defaults.result_ttl

    @property
    def dead_ttl(self) -> float | None:
        """Retention of dead records, seconds (None: kept)."""
        return self.job_defaults.dead_ttl

    @property
    def backoff(self) -> Backoff:
        """Default retry delay policy."""
        return self.job_defaults.backoff

    @backoff.setter
    def backoff(self, value: Backoff) -> None:
        self.job_defaults.backoff = _check_backoff(value)

    # -- tasks --------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(self, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue=..., ...)``.

        Options: ``name`` (default ``module:qualname``), ``queue``, ``weight``,
        ``time`` (estimated run time, seconds, or ``"auto"``: learned),
        ``alpha`` and ``min_samples`` (learned time), ``resource``, ``priority``,
        ``max_attempts``, ``lease`` (seconds), ``timeout`` (execution time
        limit of one attempt, seconds; None = none), ``result_ttl`` (seconds),
        ``backoff`` (a :class:`Backoff`), ``retry_on`` (an exception class or
        a tuple of them). Everything is checked here, at registration, so a
        worker never meets a policy it cannot apply.

        Raises:
            ValidationError: an option is invalid, or the name is taken by
                another function.
            UnknownOptionError: an unknown option (a :class:`ValidationError`
                and a ``TypeError``).
        """

        def register(func: Callable[P, R]) -> Task[P, R]:
            return self._register(func, **options)

        return register(fn) if fn is not None else register

    def _register(self, func: Callable[P, R], **options: Any) -> Task[P, R]:
        allowed = {
            "name",
            "queue",
            "weight",
            "time",
            "resource",
            "priority",
            "alpha",
            "min_samples",
            "max_attempts",
            "lease",
            "timeout",
            "result_ttl",
            "backoff",
            "retry_on",
        }
        unknown = set(options) - allowed
        if unknown:
            raise UnknownOptionError(f"unknown task option(s): {', '.join(sorted(unknown))}")
        name = validate_task_name(options.get("name") or f"{func.__module__}:{func.__qualname__}")
        weight = options.get("weight", defaults.WEIGHT)
        time = options.get("time", defaults.TIME)
        resource = options.get("resource", defaults.RESOURCE)
        priority = options.get("priority")
        alpha = options.get("alpha", defaults.ALPHA)
        min_samples = options.get("min_samples", defaults.MIN_SAMPLES)
        # validate now, not at enqueue
        resolve_inputs(priority, weight, time, resource, alpha, min_samples)
        task: Task[P, R] = Task(
            app=self,
            fn=func,
            name=name,
            queue=validate_queue_name(options.get("queue", self.default_queue)),
            weight=weight,
            time=time,
            resource=resource,
            priority=priority,
            alpha=alpha,
            min_samples=min_samples,
            max_attempts=check_attempts(options.get("max_attempts", self.max_attempts)),
            lease=check_lease(options.get("lease", self.lease)),
            timeout=check_timeout(options.get("timeout", self.job_defaults.timeout)),
            result_ttl=seconds(options.get("result_ttl", self.result_ttl), "result_ttl"),
            backoff=options.get("backoff", self.backoff),
            retry_on=options.get("retry_on", (Exception,)),
        )
        existing = self.tasks.get(name)
        if existing is not None and existing.fn is not func:
            raise ValidationError(f"task name {name!r} is already registered")
        self.tasks[name] = task
        return task

    # -- enqueue ------------------------------------------------------------

    def enqueue(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        options: EnqueueOptions | None = None,
        **option_kwargs: Any,
    ) -> Job:
        """Enqueue one job and return its handle.

        Args:
            task: a registered :class:`Task`, or a task name (``"pkg.mod:fn"``)
                for producers that do not import the task's code (the app's
                defaults then apply unless a task of that name is registered).
            args: positional arguments (JSON-serializable; tuples become lists).
            kwargs: keyword arguments (JSON-serializable).
            options: an :class:`EnqueueOptions`; or give its fields as keyword
                arguments (``delay=``, ``eta=``, ``priority=``, ``job_id=``, ...).

        Returns:
            A :class:`Job`. If ``job_id`` names an existing job, that job's
            handle is returned and nothing is written (idempotency key).

        Raises:
            ValidationError: bad name, priority inputs, times (beyond the
                limits of ``docs/design.md``, "Limits", too) or payload
                (:class:`PayloadError` for arguments that are not JSON, would
                not come back exactly, or are too large or too deep), options
                that are not an :class:`EnqueueOptions`
                (:class:`UnknownOptionError` for an unknown keyword). Nothing
                is written then.
        """
        queue, item = self._build(task, args, kwargs, _options(options, option_kwargs))
        backend = self.backend
        batch = current_batch(backend)
        if batch is not None:  # inside app.batching(): written at the flush
            batch.add(queue, item)
            return self._job(item.job_id, queue)
        backend.register_queue(queue)
        backend.scripts.enqueue(backend.queue(queue), [item])
        return self._job(item.job_id, queue)

    def batching(self, max_jobs: int = BULK_BATCH) -> contextlib.AbstractContextManager[Batch]:
        """A block in which this thread's :meth:`enqueue` calls are buffered
        and written in bulk: every ``max_jobs`` jobs and at the end of the
        block. ``enqueue`` still validates at once, but returns before the
        job is written; a Redis error surfaces at the flush. The full
        contract is in :mod:`scheduler.batching`.

        Raises:
            ValidationError: ``max_jobs`` is not an int >= 1.
        """
        return batching(self.backend, max_jobs)

    def enqueue_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        """Enqueue many jobs in few round trips (one script call per
        :data:`BULK_BATCH` jobs of one queue).

        All specs are validated before anything is written, so bad input
        writes nothing. Each script call is atomic; a Redis failure between
        calls can leave earlier batches written (re-running is safe: job ids
        given by the caller make it idempotent).

        Returns:
            Handles in the order of ``specs``.

        Raises:
            ValidationError: as :meth:`enqueue`, for any spec, or an item
                that is not a :class:`JobSpec`.
        """
        built, by_queue = self._build_many(specs)
        backend = self.backend
        for queue in by_queue:
            backend.register_queue(queue)
        # Batches go out as they are packed, with two in flight, so packing the
        # next one overlaps with Redis running the last (one slot per queue).
        scripts = backend.scripts
        for queue, items in by_queue.items():
            qk = backend.queue(queue)
            scripts.run_streamed(
                scripts.enqueue_call(qk, items[start : start + BULK_BATCH])
                for start in range(0, len(items), BULK_BATCH)
            )
        return [self._job(item.job_id, queue) for queue, item in built]

    # -- the async producer ----------------------------------------------------

    async def aenqueue(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        options: EnqueueOptions | None = None,
        **option_kwargs: Any,
    ) -> Job:
        """:meth:`enqueue` on ``redis.asyncio``: the same hooks, validation,
        script and reply; the event loop is never blocked.

        Raises:
            ValidationError: as :meth:`enqueue` (nothing written).
            redis.RedisError: the server failed the call.
        """
        queue, item = self._build(task, args, kwargs, _options(options, option_kwargs))
        qk = self.backend.queue(queue)
        aio = self.aio
        await aio.register_queue(qk, queue)
        await aio.run_many([self.scripts.enqueue_call(qk, [item])])
        return self._job(item.job_id, queue)

    async def aenqueue_many(self, specs: Iterable[JobSpec]) -> list[Job]:
        """:meth:`enqueue_many` on ``redis.asyncio``: every spec validated
        first, then one pipelined round trip per queue (a script call per
        :data:`BULK_BATCH` jobs).

        Raises:
            ValidationError: as :meth:`enqueue_many` (nothing written).
        """
        built, by_queue = self._build_many(specs)
        aio = self.aio
        scripts = self.scripts
        for queue, items in by_queue.items():
            qk = self.backend.queue(queue)
            await aio.register_queue(qk, queue)
            await aio.run_many(
                [
                    scripts.enqueue_call(qk, items[start : start + BULK_BATCH])
                    for start in range(0, len(items), BULK_BATCH)
                ]
            )
        return [self._job(item.job_id, queue) for queue, item in built]

    async def ajob(self, job_id: str, queue: str | None = None) -> Job:
        """:meth:`job` on ``redis.asyncio``: the handle of an existing job.

        Raises:
            JobNotFoundError: no such job. InvalidNameError: a malformed id
                or queue name.
        """
        validate_job_id(job_id)
        queues = [queue] if queue is not None else await self.aio.queue_names()
        for q in queues:
            if await self.aio.has_job(self.backend.queue(q), job_id):
                return self._job(job_id, q)
        raise JobNotFoundError(f"no job {job_id!r}" + (f" in queue {queue!r}" if queue else ""))

    # -- building (hooks, then validation) -------------------------------------

    def before_enqueue(self, fn: BeforeEnqueue) -> BeforeEnqueue:
        """Register a producer hook (usable as a decorator); hooks run in
        order on each job of :meth:`enqueue`, :meth:`enqueue_many`,
        :meth:`aenqueue`, :meth:`aenqueue_many` and ``task.enqueue``, before
        validation. A hook gets the job's :class:`JobSpec` and returns a
        changed one (``spec.with_meta(tenant="acme")``) or None; an exception
        refuses the job and propagates (for a bulk call: nothing is written).

        Cron firings do not run hooks: a schedule's job is built once, when
        the schedule is declared, and fired by the cron script -- put what
        every firing needs in the schedule's ``meta=``.

        Raises:
            ValidationError: ``fn`` is not callable.
        """
        if not callable(fn):
            raise ValidationError(f"before_enqueue takes a callable, got {shown(fn)}")
        self.enqueue_hooks.append(fn)
        return fn

    def _build(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        opts: EnqueueOptions,
    ) -> tuple[str, EnqueueItem]:
        if self.enqueue_hooks:
            # args/kwargs are validated by the builder, after the hooks.
            spec = JobSpec(task, cast(tuple[Any, ...], args), cast(dict[str, Any], kwargs), opts)
            spec = self._hooked(spec)
            task, args, kwargs, opts = spec.task, spec.args, spec.kwargs, spec.options
        return self.builder.build(task, args, kwargs, opts)

    def _hooked(self, spec: JobSpec) -> JobSpec:
        for hook in self.enqueue_hooks:
            changed = hook(spec)
            if changed is not None:
                if not isinstance(changed, JobSpec):
                    raise ValidationError(
                        f"before_enqueue hook {shown(hook)} returned {shown(changed)}, "
                        "not a JobSpec or None"
                    )
                spec = changed
        return spec

    def _build_many(
        self, specs: Iterable[JobSpec]
    ) -> tuple[list[tuple[str, EnqueueItem]], dict[str, list[EnqueueItem]]]:
        """Every spec built (hooks, then validation), and the items by queue."""
        items = _specs(specs)
        built: list[tuple[str, EnqueueItem]]
        if self.enqueue_hooks:
            build = self._build
            built = [build(s.task, s.args, s.kwargs, _options(s.options, {})) for s in items]
        else:
            built = self.builder.build_many(
                (s.task, s.args, s.kwargs, _options(s.options, {})) for s in items
            )
        by_queue: dict[str, list[EnqueueItem]] = {}
        for queue, item in built:
            by_queue.setdefault(queue, []).append(item)
        return built, by_queue

    # -- queues and jobs ----------------------------------------------------

    def queue_keys(self, queue: str) -> QueueKeys:
        """Key names of ``queue`` (validated; cached per queue)."""
        return self.backend.queue(queue)

    def queue_names(self) -> list[str]:
        """All queues known to this prefix (registry; sorted)."""
        return self.backend.queue_names()

    def pause(self, queue: str, *, actor: str | None = None) -> bool:
        """Stop workers leasing from ``queue`` (enqueue continues).

        Args:
            queue: the queue (registered if new).
            actor: who asks, named in the audit event (default
                ``$SCHEDULER_ACTOR`` or ``user@host``; the same for
                :meth:`resume`, :meth:`set_aging` and :meth:`purge`).

        Returns:
            True if paused now, False if it already was (no audit event).

        Raises:
            InvalidNameError: a malformed queue name.
            ValidationError: a bad ``actor``. Nothing is written when raised.
        """
        keys = self.queue_keys(queue)  # validates before any write
        who = resolve_actor(actor)
        self.backend.register_queue(queue)
        return self.scripts.queue_config(keys, "paused", "1", actor=who) != "1"

    def set_limits(
        self,
        queue: str,
        *,
        task: str | None = None,
        concurrency: int | None = None,
        rate: str | Rate | None = None,
        clear_concurrency: bool = False,
        clear_rate: bool = False,
    ) -> QueueLimits:
        """Set (or clear) the concurrency and rate limits of ``queue``, or of
        ``task`` in it; enforced by the lease script across all workers
        (:mod:`scheduler.limits`: ``rate`` like ``"100/m"`` is a token
        bucket). A limit not named is left as it is. Returns the queue's
        limits afterwards.

        Raises:
            ValidationError: a bad name, ``concurrency`` (an int >= 1) or
                ``rate`` (does not parse), or a limit both set and cleared;
                nothing is written.
        """
        keys = self.queue_keys(queue)
        scope = "" if task is None else validate_task_name(task)
        conc = "-" if clear_concurrency else ""
        if concurrency is not None:
            if clear_concurrency:
                raise ValidationError("give concurrency or clear_concurrency, not both")
            conc = str(check_concurrency(concurrency))
        rate_text = "-" if clear_rate else ""
        if rate is not None:
            if clear_rate:
                raise ValidationError("give rate or clear_rate, not both")
            rate_text = (rate if isinstance(rate, Rate) else parse_rate(rate)).encode()
        self.backend.register_queue(queue)
        self.scripts.queue_limit(keys, scope, conc, rate_text)
        return self.backend.queue_limits(queue)

    def resume(self, queue: str, *, actor: str | None = None) -> bool:
        """Let workers lease from ``queue`` again (wakes an idle worker).

        Returns:
            True if resumed now, False if it was not paused (no audit event).

        Raises:
            InvalidNameError: a malformed queue name (nothing is written).
            ValidationError: a bad ``actor`` (nothing is written).
        """
        keys = self.queue_keys(queue)
        return self.scripts.queue_config(keys, "paused", "0", actor=resolve_actor(actor)) == "1"

    def set_aging(self, queue: str, aging: float, *, actor: str | None = None) -> bool:
        """Set ``queue``'s aging rate: priority units gained per second of waiting.

        From now on every waiting job gains ``aging`` per second: a job's
        effective priority is its priority plus the aging accrued at each
        rate while it waited (``docs/design.md``, "Ordering"); jobs already
        waiting keep what they accrued, nothing is rescored. 0 is strict
        priority (accrued aging is kept). Due delayed jobs are promoted
        first, in bounded script calls.

        Args:
            queue: the queue name.
            aging: rate in ``[0, MAX_AGING_RATE]`` (1e6) priority units per
                second; ``int`` or ``float``, not ``bool``.

        Returns:
            True if the rate changed (an audit event names ``actor``).

        Raises:
            InvalidPriorityError: not a real number, negative, not finite or
                above :data:`scheduler.priority.MAX_AGING_RATE`.
            InvalidNameError: a malformed queue name.
            ValidationError: a bad ``actor``.
            Nothing is written when either is raised.
        """
        keys = self.queue_keys(queue)  # validates before any write
        value = validate_aging_rate(aging)
        who = resolve_actor(actor)
        self.backend.register_queue(queue)
        old = self.scripts.queue_config(keys, "aging", repr(value), actor=who)
        try:
            return float(old) != value
        except ValueError:  # a damaged stored value: it was replaced
            return True

    def purge(self, queue: str, state: str, *, actor: str | None = None) -> int:
        """Delete every job of ``queue`` in one state set, a bounded batch
        (:data:`scheduler.defaults.PURGE_BATCH`) per script call until none is
        left. Each call that deleted jobs writes an audit event (action
        ``purge``, ``actor``, how many). Workers of purged leased jobs are
        refused when they report.

        Args:
            queue: the queue.
            state: ``ready``, ``delayed`` (includes failed jobs awaiting a
                retry), ``leased``, ``dead`` or ``done`` (succeeded and
                cancelled records).

        Returns:
            How many jobs were deleted.

        Raises:
            ValidationError: unknown ``state`` or bad ``actor``;
                InvalidNameError: a malformed queue name.
        """
        keys = self.queue_keys(queue)
        if state not in PURGE_STATES:
            raise ValidationError(
                f"cannot purge {shown(state)}; use one of {', '.join(PURGE_STATES)}"
            )
        who = resolve_actor(actor)
        deleted = 0
        while n := self.scripts.purge(keys, state, defaults.PURGE_BATCH, actor=who):
            deleted += n
        return deleted

    def job(self, job_id: str, queue: str | None = None) -> Job:
        """Return the handle of an existing job.

        Args:
            job_id: the job id.
            queue: its queue; if None, every registered queue is searched.

        Raises:
            JobNotFoundError: no such job (or its record expired).
            InvalidNameError: malformed id or queue name.
        """
        validate_job_id(job_id)
        queues = [queue] if queue is not None else self.queue_names()
        for q in queues:
            if self.backend.has_job(q, job_id):
                return self._job(job_id, q)
        raise JobNotFoundError(f"no job {job_id!r}" + (f" in queue {queue!r}" if queue else ""))

    # -- schedules (delegated to scheduler.cron) ------------------------------

    @functools.cached_property
    def schedules(self) -> ScheduleStore:
        """This app's cron and interval schedules: the ones declared in code
        (:meth:`cron`, :meth:`every`) and the ones stored in Redis -- add,
        sync, get, list, pause, resume, remove (see :mod:`scheduler.cron`)."""
        return ScheduleStore(self.backend, self.builder)

    def cron(
        self,
        expr: str,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        declare: bool = True,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Declare a cron schedule: enqueue ``task(*args, **kwargs)`` whenever
        ``expr`` matches the wall-clock time of ``tz``.

        Args:
            expr: 5 fields (``"*/5 * * * *"``), 6 fields with seconds first
                (``"*/10 * * * * *"``), or ``@hourly``/``@daily``/... aliases.
            task: a registered :class:`Task` or a task name.
            args, kwargs: the job's arguments (JSON-serializable).
            declare: True (default): remember it as declared in code, upserted
                by ``schedules.sync()`` when a cron process starts. False:
                only build it (store it with ``app.schedules.add(...)``).
            options: ``id``, ``tz``, ``start``, ``end``, ``jitter``,
                ``misfire``, ``misfire_grace``, ``paused`` and the job options
                ``queue``, ``priority``/``weight``/``time``/``resource``,
                ``max_attempts``, ``lease``, ``result_ttl``, ``meta`` -- see
                :class:`scheduler.cron.ScheduleOptions`.

        Returns:
            The validated :class:`scheduler.cron.Schedule` (nothing written yet).

        Raises:
            InvalidScheduleError: bad expression, timezone, bounds, jitter or
                misfire setting (a :class:`ValidationError`).
            ValidationError: bad job options or arguments, as for :meth:`enqueue`.
        """
        schedule = self.schedules.build(task, args, kwargs, cron=expr, **options)
        return self.schedules.declare(schedule) if declare else schedule

    def every(
        self,
        interval: float | timedelta,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        declare: bool = True,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Declare an interval schedule: enqueue the job every ``interval``
        (seconds or ``timedelta``, >= 1 s) at ``start + k * interval`` --
        without ``start``, aligned to the Unix epoch (``every=3600`` fires on
        the hour, UTC). Other arguments as for :meth:`cron`.

        Raises:
            InvalidScheduleError, ValidationError: as for :meth:`cron`.
        """
        schedule = self.schedules.build(task, args, kwargs, every=interval, **options)
        return self.schedules.declare(schedule) if declare else schedule


def _specs(specs: Iterable[JobSpec]) -> list[JobSpec]:
    """``specs`` as a list, each checked to be a :class:`JobSpec`.

    Raises:
        ValidationError: ``specs`` is not iterable, or an item is not a JobSpec.
    """
    try:
        items = list(specs)
    except TypeError:
        raise ValidationError(f"enqueue_many takes JobSpec items, got {shown(specs)}") from None
    for spec in items:
        if not isinstance(spec, JobSpec):
            raise ValidationError(f"enqueue_many takes JobSpec items, got {shown(spec)}")
    return items


def _check_backoff(value: object) -> Backoff:
    if not isinstance(value, Backoff):
        raise ValidationError(f"backoff must be a Backoff, got {shown(value)}")
    return value


#: The options of a job enqueued without any (frozen: shared by all such calls).
_NO_OPTIONS = EnqueueOptions()


def _options(options: object, extra: dict[str, Any]) -> EnqueueOptions:
    """The per-job options of an enqueue call: ``options`` updated by ``extra``.

    Raises:
        ValidationError: ``options`` is not an :class:`EnqueueOptions`.
        UnknownOptionError: an unknown keyword.
    """
    if not extra:  # the common case: no keyword options, nothing to merge
        if options is None:
            return _NO_OPTIONS
        if isinstance(options, EnqueueOptions):
            return options
    if options is not None and not isinstance(options, EnqueueOptions):
        raise ValidationError(f"options must be an EnqueueOptions, got {shown(options)}")
    unknown = set(extra) - set(attrs.fields_dict(EnqueueOptions))
    if unknown:
        raise UnknownOptionError(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")
    if options is None:
        return EnqueueOptions(**extra)
    return attrs.evolve(options, **extra) if extra else options
