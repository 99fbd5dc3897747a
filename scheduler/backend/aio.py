"""The storage layer on ``redis.asyncio``: what an async producer needs.

Enqueue and result waits from an event loop (FastAPI, aiohttp, ...) without
blocking it. Nothing here is a second implementation of a state change: a
call is the very :class:`scheduler.backend.scripts.ScriptCall` the sync
path builds (same script, same KEYS and ARGV, same reply parser), sent as
EVALSHA on an async client; on ``NOSCRIPT`` (a restarted server) the
scripts of the batch are loaded and the batch is sent again -- safe, as
every script is idempotent under a repeat (the same rule as
:meth:`scheduler.backend.scripts.Scripts.run_many`).

Plain and TLS (``rediss://``) servers, Unix sockets, Redis Cluster and
Sentinel are supported by :func:`async_client_from` (settings copied from
the sync client; :mod:`scheduler.backend.aio_topology`); or pass your own
``redis.asyncio`` client. On Cluster and Sentinel, calls are retried through
a failover or slot migration as on the sync path, and on a cluster a queue
whose scripts ``SPUBLISH`` is waited on with ``SSUBSCRIBE`` (redis-py's
async ``ClusterPubSub``, which follows the slot's master).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.exceptions import NoScriptError

from scheduler.backend import topology
from scheduler.backend.aio_topology import (
    async_cluster_from,
    async_sentinel_from,
    changing,
    retrying,
)
from scheduler.backend.connection import _init_parameters
from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import JobRecord, parse_record
from scheduler.backend.replies import text
from scheduler.backend.scripts import ScriptCall, Scripts, script_error
from scheduler.errors import InvalidNameError, ValidationError
from scheduler.validation import validate_queue_name

__all__ = ["AsyncBackend", "async_client_from"]

T = TypeVar("T")

#: Longest wait for a subscription's confirmation, seconds.
_CONFIRM_WAIT = 10.0

_CONNECTION_CLASSES: dict[type, type] = {
    redis.Connection: aredis.Connection,
    redis.SSLConnection: aredis.SSLConnection,
    redis.UnixDomainSocketConnection: aredis.UnixDomainSocketConnection,
}


def async_client_from(client: redis.Redis) -> aredis.Redis:
    """A ``redis.asyncio`` client to the same server as ``client``, with the
    settings of its pool (host, port, db, credentials, TLS, Unix socket,
    timeouts, ``decode_responses``); for a cluster client a ``redis.asyncio``
    cluster client on its nodes, for a Sentinel-managed client one of the
    same service on the same sentinels.

    Raises:
        ValidationError: ``client`` uses a connection class of its own: pass
            a ``redis.asyncio`` client (``Scheduler(async_client=...)``).
    """
    if topology.is_cluster(client):
        cluster: Any = async_cluster_from(client)  # same command API as aredis.Redis
        return cluster  # type: ignore[no-any-return]
    sentinel = topology.sentinel_pool(client)
    if sentinel is not None:
        return async_sentinel_from(sentinel)
    pool = client.connection_pool
    target = _CONNECTION_CLASSES.get(pool.connection_class)
    if target is None:
        raise ValidationError(
            f"cannot copy a {pool.connection_class.__name__} to asyncio; "
            "give Scheduler(async_client=...)"
        )
    known = _init_parameters(target)
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in known and k != "retry"}
    return aredis.Redis(connection_pool=aredis.ConnectionPool(connection_class=target, **kwargs))


class AsyncBackend:
    """Script calls, the queue registry, record reads and result waits of one
    key prefix on a ``redis.asyncio`` client.

    Args:
        client: the async client (owned: :meth:`aclose` closes it).
        scripts: the sync backend's scripts: their names, texts and SHA1s are
            shared, so both paths run the same Lua.
        queues_key: the queue registry key (``backend.keys.queues``).
    """

    def __init__(self, client: aredis.Redis, scripts: Scripts, queues_key: str) -> None:
        self.client = client
        self._scripts = scripts
        self._queues_key = queues_key
        self._registered: set[str] = set()
        self._cluster = isinstance(client, AsyncRedisCluster)
        self._sentinel = isinstance(getattr(client, "connection_pool", None), AsyncSentinelPool)
        self._sharded: bool | None = None  # cluster of Redis >= 7 (read once)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, retried through a failover or slot migration on
        Cluster and Sentinel (:func:`~scheduler.backend.aio_topology.retrying`)."""
        if self._cluster or self._sentinel:
            return await retrying(call, sentinel=self._sentinel)
        return await call()

    async def _pipelined(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        """One pipelined round trip; a transient error reply is raised (so
        :meth:`_call` retries the batch: every script is idempotent)."""
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*self._scripts.command(call))
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and changing(reply):
                raise reply
        return replies

    async def run_many(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        """Run script calls in one round trip (a pipeline without MULTI) and
        return their parsed replies.

        Raises:
            ScriptReplyError: a script refused its call.
            redis.RedisError: a call failed.
        """
        for attempt in (1, 2):
            replies = await self._call(lambda: self._pipelined(calls))
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                for name in {c.name for c in calls}:
                    await self.client.script_load(self._scripts.text(name))
                continue
            for reply in replies:
                if isinstance(reply, Exception):
                    raise script_error(reply)
            return [c.parse(r) for c, r in zip(calls, replies, strict=True)]
        raise AssertionError("unreachable")  # pragma: no cover

    async def register_queue(self, qk: QueueKeys, name: str) -> None:
        """Add the queue to the registry (once per backend; idempotent); on a
        cluster of Redis >= 7 also mark its notifications sharded, as
        :meth:`scheduler.backend.Backend.register_queue` does."""
        if name not in self._registered:
            await self._call(lambda: self.client.sadd(self._queues_key, qk.queue))
            if await self._sharded_pubsub():
                await self._call(lambda: self.client.hset(qk.meta, "pubsub", "sharded"))
            self._registered.add(name)

    async def _sharded_pubsub(self) -> bool:
        if self._sharded is None:
            sharded = False
            if self._cluster:
                info = await self.client.info("server")
                major = str(info.get("redis_version", "0")).split(".", 1)[0]
                sharded = major.isdigit() and int(major) >= 7
            self._sharded = sharded
        return self._sharded

    async def read_record(self, qk: QueueKeys, job_id: str) -> JobRecord | None:
        """The record of ``job_id``, or None.

        Raises:
            ValueError: the stored record is damaged.
        """
        raw = await self.client.hget(qk.jobs, job_id)
        return None if raw is None else parse_record(job_id, raw)

    async def has_job(self, qk: QueueKeys, job_id: str) -> bool:
        """True if the queue holds a record of ``job_id``."""
        return bool(await self.client.hexists(qk.jobs, job_id))

    async def queue_names(self) -> list[str]:
        """The registered queues whose names are valid, sorted (a bad member
        is skipped, as in :meth:`scheduler.backend.Backend.queue_names`)."""
        names = []
        for member in await self.client.smembers(self._queues_key):
            try:
                names.append(validate_queue_name(text(member)))
            except InvalidNameError:
                continue
        return sorted(names)

    async def subscribed(self, qk: QueueKeys) -> Finished:
        """A subscription to ``qk``'s ``finished`` channel (an async context
        manager; the subscription is confirmed on entry): sharded
        (``SSUBSCRIBE``) if the queue's scripts ``SPUBLISH`` (its ``pubsub``
        meta field, see :meth:`register_queue`), else plain.

        Raises:
            redis.RedisError: the meta field could not be read.
        """
        sharded = False
        if self._cluster:
            sharded = text(await self.client.hget(qk.meta, "pubsub") or "") == "sharded"
        return Finished(self.client, qk.finished_channel, sharded=sharded)

    async def aclose(self) -> None:
        """Close the async client's connections."""
        await self.client.aclose()


class Finished:
    """A subscription to one queue's ``finished`` pub/sub channel (message:
    the ids of jobs that reached a final state, joined by ``,``).

    ``sharded``: ``SSUBSCRIBE`` on a cluster client (redis-py's async
    ``ClusterPubSub`` connects to the master owning the channel's slot and
    follows it through a migration or failover), else ``SUBSCRIBE``.
    Entering waits for the server's confirmation, so a message published
    after it is never missed.
    """

    def __init__(self, client: aredis.Redis, channel: str, *, sharded: bool = False) -> None:
        # redis-py's cluster pubsub is a different class with the same API.
        self._pubsub: Any = client.pubsub()
        self._channel = channel
        self._sharded = sharded

    async def _next(self, timeout: float) -> Any:
        if self._sharded:
            return await self._pubsub.get_sharded_message(timeout=timeout)
        return await self._pubsub.get_message(timeout=timeout)

    async def __aenter__(self) -> Finished:
        try:
            if self._sharded:
                await self._pubsub.ssubscribe(self._channel)
            else:
                await self._pubsub.subscribe(self._channel)
            loop = asyncio.get_running_loop()
            end = loop.time() + _CONFIRM_WAIT
            while True:  # a data message meanwhile cannot concern this wait
                left = end - loop.time()
                if left <= 0:
                    raise redis.TimeoutError("subscription not confirmed")
                msg = await self._next(left)
                if msg is not None and text(msg.get("type")) in ("subscribe", "ssubscribe"):
                    return self
        except BaseException:
            await self._pubsub.aclose()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()

    async def wait(self, job_id: str, timeout: float) -> bool:
        """True when a message names ``job_id``; False after ``timeout`` seconds.

        Raises:
            redis.RedisError: the connection failed.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (left := end - loop.time()) > 0:
            msg = await self._next(left)
            if (
                msg is not None
                and text(msg.get("type")) in ("message", "smessage")
                and job_id in text(msg.get("data")).split(",")
            ):
                return True
        return False
