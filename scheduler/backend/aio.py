"""The storage layer on ``redis.asyncio``: what an async producer needs.

Enqueue and result waits from an event loop (FastAPI, aiohttp, ...) without
blocking it. Nothing here is a second implementation of a state change: a
call is the very :class:`scheduler.backend.scripts.ScriptCall` the sync
path builds (same script, same KEYS and ARGV, same reply parser), sent as
EVALSHA on an async client; on ``NOSCRIPT`` (a restarted server) the
scripts of the batch are loaded and the batch is sent again -- safe, as
every script is idempotent under a repeat (the same rule as
:meth:`scheduler.backend.scripts.Scripts.run_many`).

Plain and TLS (``rediss://``) servers and Unix sockets are supported by
:func:`async_client_from` (settings copied from the sync client); for a
Sentinel or Cluster deployment pass your own ``redis.asyncio`` client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aredis
from redis.exceptions import NoScriptError

from scheduler.backend import topology
from scheduler.backend.connection import _init_parameters
from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import JobRecord, parse_record
from scheduler.backend.replies import text
from scheduler.backend.scripts import ScriptCall, Scripts, script_error
from scheduler.errors import InvalidNameError, ValidationError
from scheduler.validation import validate_queue_name

__all__ = ["AsyncBackend", "async_client_from"]

_CONNECTION_CLASSES: dict[type, type] = {
    redis.Connection: aredis.Connection,
    redis.SSLConnection: aredis.SSLConnection,
    redis.UnixDomainSocketConnection: aredis.UnixDomainSocketConnection,
}


def async_client_from(client: redis.Redis) -> aredis.Redis:
    """A ``redis.asyncio`` client to the same server as ``client``, with the
    settings of its pool (host, port, db, credentials, TLS, Unix socket,
    timeouts, ``decode_responses``).

    Raises:
        ValidationError: ``client`` is a Cluster or Sentinel client, or uses
            a connection class of its own: pass a ``redis.asyncio`` client
            (``Scheduler(async_client=...)``).
    """
    if topology.is_cluster(client) or topology.sentinel_pool(client) is not None:
        raise ValidationError("on Cluster or Sentinel, give Scheduler(async_client=...)")
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

    async def run_many(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        """Run script calls in one round trip (a pipeline without MULTI) and
        return their parsed replies.

        Raises:
            ScriptReplyError: a script refused its call.
            redis.RedisError: a call failed.
        """
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for call in calls:
                pipe.execute_command(*self._scripts.command(call))
            replies = await pipe.execute(raise_on_error=False)
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
        """Add the queue to the registry (once per backend; idempotent)."""
        if name not in self._registered:
            await self.client.sadd(self._queues_key, qk.queue)
            self._registered.add(name)

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

    def subscribed(self, qk: QueueKeys) -> Finished:
        """A subscription to ``qk``'s ``finished`` channel (async context manager)."""
        return Finished(self.client, qk.finished_channel)

    async def aclose(self) -> None:
        """Close the async client's connections."""
        await self.client.aclose()


class Finished:
    """A subscription to one queue's ``finished`` pub/sub channel (message:
    the ids of jobs that reached a final state, joined by ``,``)."""

    def __init__(self, client: aredis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._channel = channel

    async def __aenter__(self) -> Finished:
        await self._pubsub.subscribe(self._channel)
        return self

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
            msg = await self._pubsub.get_message(timeout=left)
            if msg is not None and job_id in text(msg.get("data")).split(","):
                return True
        return False
