"""The application object: construction, the storage layer and defaults it
composes, and job lookup.

:class:`Scheduler` is put together from one part per job, each in its own
module: task registration (:mod:`scheduler.app.tasks`), enqueueing and the
producer hooks (:mod:`scheduler.app.producer`), queue control
(:mod:`scheduler.app.queues`) and declared schedules
(:mod:`scheduler.app.schedules`). Each part names the attributes it uses.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import redis
import redis.asyncio as aredis

from scheduler import defaults
from scheduler.app.producer import BeforeEnqueue, Producer
from scheduler.app.queues import QueueControl
from scheduler.app.schedules import ScheduleDeclarations
from scheduler.app.tasks import TaskRegistry
from scheduler.backend import Backend
from scheduler.backend.aio import AsyncBackend, async_client_from
from scheduler.backend.connection import client_from_url
from scheduler.backend.keys import GlobalKeys, QueueKeys
from scheduler.backend.scripts import Scripts
from scheduler.backend.topology import RedisClient
from scheduler.building import JobBuilder, JobDefaults, check_attempts, check_lease, check_timeout
from scheduler.codec import DEFAULT_CODEC, JSONCodec
from scheduler.errors import JobNotFoundError, ValidationError
from scheduler.job import Job
from scheduler.middleware import Hooks
from scheduler.task import Backoff, Task
from scheduler.timeutil import seconds
from scheduler.validation import shown, validate_job_id, validate_queue_name

__all__ = ["Scheduler"]


class Scheduler(TaskRegistry, Producer, QueueControl, ScheduleDeclarations):
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

    # -- queues and jobs ----------------------------------------------------

    def queue_keys(self, queue: str) -> QueueKeys:
        """Key names of ``queue`` (validated; cached per queue)."""
        return self.backend.queue(queue)

    def queue_names(self) -> list[str]:
        """All queues known to this prefix (registry; sorted)."""
        return self.backend.queue_names()

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


def _check_backoff(value: object) -> Backoff:
    if not isinstance(value, Backoff):
        raise ValidationError(f"backoff must be a Backoff, got {shown(value)}")
    return value
