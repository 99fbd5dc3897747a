"""The application object: tasks, enqueue, queue control, job lookup."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, Unpack, overload

import attrs
import redis

from scheduler.building import JobBuilder, check_attempts, check_lease
from scheduler.connection import client_from_url
from scheduler.cron import Schedule, ScheduleOptions, ScheduleStore
from scheduler.errors import JobNotFoundError, ValidationError
from scheduler.job import Job
from scheduler.keys import GlobalKeys, QueueKeys, global_keys
from scheduler.priority import resolve_priority
from scheduler.scripts import EnqueueItem, Scripts
from scheduler.serialization import DEFAULT_MAX_PAYLOAD_BYTES
from scheduler.task import Backoff, EnqueueOptions, JobSpec, Task
from scheduler.timeutil import seconds
from scheduler.validation import (
    validate_finite,
    validate_job_id,
    validate_prefix,
    validate_queue_name,
    validate_task_name,
)

__all__ = ["Scheduler"]

P = ParamSpec("P")
R = TypeVar("R")

#: Jobs per enqueue script call in :meth:`Scheduler.enqueue_many`.
BULK_BATCH = 500


class Scheduler:
    """A scheduler bound to one Redis server (or cluster node set) and key prefix.

    Tasks are registered on it with :meth:`task`; jobs are enqueued with
    :meth:`enqueue` / :meth:`enqueue_many` or ``task.enqueue(...)``; workers
    run with :class:`scheduler.Worker` or ``scheduler worker module:app``.

    Args:
        client: a ``redis.Redis`` client (bytes or decoded responses).
        prefix: key prefix, see :mod:`scheduler.keys`.
        default_queue: queue of tasks that do not name one.
        max_payload_bytes: limit on encoded ``[args, kwargs]`` and results, bytes.
        events_maxlen: approximate length cap of each queue's event stream;
            0 disables events.
        max_attempts: default leases before a job goes dead (>= 1).
        lease: default lease duration (visibility timeout), seconds.
        result_ttl: default retention of succeeded/cancelled records, seconds.
        dead_ttl: retention of dead records, seconds; None keeps them forever.
        backoff: default retry delay policy.

    Raises:
        ValidationError: an argument is out of range.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "sched",
        default_queue: str = "default",
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        events_maxlen: int = 10_000,
        max_attempts: int = 3,
        lease: float | timedelta = 60.0,
        result_ttl: float | timedelta = 3600.0,
        dead_ttl: float | timedelta | None = 7 * 86400.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.redis = client
        self.prefix = validate_prefix(prefix)
        self.default_queue = validate_queue_name(default_queue)
        if max_payload_bytes < 1:
            raise ValidationError("max_payload_bytes must be >= 1")
        self.max_payload_bytes = max_payload_bytes
        self.max_attempts = check_attempts(max_attempts)
        self.lease = check_lease(lease)
        self.result_ttl = seconds(result_ttl, "result_ttl")
        self.dead_ttl = None if dead_ttl is None else seconds(dead_ttl, "dead_ttl")
        self.backoff = backoff or Backoff()
        self.scripts = Scripts(client, events_maxlen=events_maxlen)
        self.keys: GlobalKeys = global_keys(self.prefix)
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._registered_queues: set[str] = set()
        self._builder = JobBuilder(self)
        self._queue_keys: dict[str, QueueKeys] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Scheduler:
        """Create a scheduler from a Redis URL (``redis://``, ``rediss://`` for TLS,
        ``unix://``; user/password for AUTH/ACL in the URL). Other keyword
        arguments go to :class:`Scheduler`."""
        return cls(client_from_url(url), **kwargs)

    def close(self) -> None:
        """Close the Redis client's connections (and those of script calls)."""
        self.scripts.close()
        self.redis.close()

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
        ``time`` (estimated run time, seconds), ``resource``, ``priority``,
        ``max_attempts``, ``lease`` (seconds), ``result_ttl`` (seconds),
        ``backoff`` (:class:`Backoff`), ``retry_on`` (exception types).

        Raises:
            ValidationError: an option is invalid, or the name is taken by
                another function.
            TypeError: an unknown option.
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
            "max_attempts",
            "lease",
            "result_ttl",
            "backoff",
            "retry_on",
        }
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(f"unknown task option(s): {', '.join(sorted(unknown))}")
        name = validate_task_name(options.get("name") or f"{func.__module__}:{func.__qualname__}")
        weight = options.get("weight", 1.0)
        time = options.get("time", 1.0)
        resource = options.get("resource", 1.0)
        priority = options.get("priority")
        resolve_priority(priority, weight, time, resource)  # validate now, not at enqueue
        task: Task[P, R] = Task(
            app=self,
            fn=func,
            name=name,
            queue=validate_queue_name(options.get("queue", self.default_queue)),
            weight=weight,
            time=time,
            resource=resource,
            priority=priority,
            max_attempts=check_attempts(options.get("max_attempts", self.max_attempts)),
            lease=check_lease(options.get("lease", self.lease)),
            result_ttl=seconds(options.get("result_ttl", self.result_ttl), "result_ttl"),
            backoff=options.get("backoff", self.backoff),
            retry_on=tuple(options.get("retry_on", (Exception,))),
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
            ValidationError: bad name, priority inputs, times or payload
                (:class:`PayloadError` for non-JSON or oversized arguments).
                Nothing is written then.
        """
        opts = options if options is not None else EnqueueOptions(**option_kwargs)
        if options is not None and option_kwargs:
            opts = _merge(options, option_kwargs)
        queue, item = self._build(task, args, kwargs, opts)
        qk = self.queue_keys(queue)
        self._register_queue(queue)
        self.scripts.enqueue(qk, [item])
        return Job(self, item.job_id, queue)

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
            ValidationError: as :meth:`enqueue`, for any spec.
        """
        build = self._build
        built = [build(s.task, s.args, s.kwargs, s.options) for s in specs]
        by_queue: dict[str, list[EnqueueItem]] = {}
        for queue, item in built:
            by_queue.setdefault(queue, []).append(item)
        for queue in by_queue:
            self._register_queue(queue)
        # Batches go out as they are packed, with two in flight, so packing the
        # next one overlaps with Redis running the last (one slot per queue).
        for queue, items in by_queue.items():
            qk = self.queue_keys(queue)
            self.scripts.run_streamed(
                self.scripts.enqueue_call(qk, items[start : start + BULK_BATCH])
                for start in range(0, len(items), BULK_BATCH)
            )
        return [Job(self, item.job_id, queue) for queue, item in built]

    def _build(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        o: EnqueueOptions,
    ) -> tuple[str, EnqueueItem]:
        """Validate and encode one job (see :class:`scheduler.building.JobBuilder`)."""
        return self._builder.build(task, args, kwargs, o)

    # -- queues and jobs ----------------------------------------------------

    def queue_keys(self, queue: str) -> QueueKeys:
        """Key names of ``queue`` (validated; cached per queue)."""
        found = self._queue_keys.get(queue)
        if found is None:
            found = QueueKeys(self.prefix, validate_queue_name(queue))
            if len(self._queue_keys) < 4096:
                self._queue_keys[queue] = found
        return found

    def _register_queue(self, queue: str) -> None:
        if queue not in self._registered_queues:
            self.redis.sadd(self.keys.queues, queue)
            with self._lock:
                self._registered_queues.add(queue)

    def queue_names(self) -> list[str]:
        """All queues known to this prefix (registry; sorted)."""
        names = self.redis.smembers(self.keys.queues)
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    def pause(self, queue: str) -> None:
        """Stop workers leasing from ``queue`` (enqueue continues)."""
        self._register_queue(queue)
        self.scripts.queue_config(self.queue_keys(queue), "paused", "1")

    def resume(self, queue: str) -> None:
        """Let workers lease from ``queue`` again (wakes an idle worker)."""
        self.scripts.queue_config(self.queue_keys(queue), "paused", "0")

    def set_aging(self, queue: str, aging: float) -> None:
        """Set ``queue``'s aging rate: priority units gained per second of waiting.

        Applies to jobs that become ready afterwards. 0 is strict priority.

        Raises:
            InvalidPriorityError: negative or not finite.
        """
        value = validate_finite("aging", aging, minimum=0.0)
        self._register_queue(queue)
        self.scripts.queue_config(self.queue_keys(queue), "aging", repr(value))

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
            if self.redis.hexists(self.queue_keys(q).jobs, job_id):
                return Job(self, job_id, q)
        raise JobNotFoundError(f"no job {job_id!r}" + (f" in queue {queue!r}" if queue else ""))

    # -- schedules (delegated to scheduler.cron) ------------------------------

    @functools.cached_property
    def schedules(self) -> ScheduleStore:
        """This app's cron and interval schedules: the ones declared in code
        (:meth:`cron`, :meth:`every`) and the ones stored in Redis -- add,
        sync, get, list, pause, resume, remove (see :mod:`scheduler.cron`)."""
        return ScheduleStore(self)

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


def _merge(options: EnqueueOptions, extra: dict[str, Any]) -> EnqueueOptions:
    return attrs.evolve(options, **extra)
