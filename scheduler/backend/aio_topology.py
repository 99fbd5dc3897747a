"""``redis.asyncio`` twins of Redis Cluster and Sentinel clients, and the
retry of the async producer's calls through a failover or slot migration.

The async producer (:mod:`scheduler.backend.aio`) gets its client from the
sync one, so a ``redis+cluster://`` or ``redis+sentinel://`` URL works for
``aenqueue`` and ``Job.aresult`` as it does for the sync API:

* a cluster client becomes a ``redis.asyncio.cluster.RedisCluster`` on the
  same nodes (seeds: the sync client's primaries) with the same connection
  settings (credentials, TLS, timeouts);
* a Sentinel-managed client becomes a ``redis.asyncio.sentinel`` master
  client of the same service on the same sentinels, whose master lookup
  skips a sentinel still running a failover (as
  :class:`scheduler.backend.topology` does for the sync client).

:func:`retrying` repeats a call on the answers the sync path retries
(:mod:`scheduler.backend.caller`): ``TRYAGAIN``, ``CLUSTERDOWN``,
``NOREPLICAS``, ``READONLY`` and, on Sentinel, a lost connection -- for up
to :data:`scheduler.defaults.TOPOLOGY_RETRY` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError
from redis.sentinel import SentinelConnectionPool

from scheduler import defaults
from scheduler.backend import topology

__all__ = ["async_cluster_from", "async_sentinel_from", "changing", "retrying"]

T = TypeVar("T")

#: Connection settings carried over to the async client (host and port come
#: from the topology; pools, retries and classes are the async client's own).
_SETTINGS = (
    "username",
    "password",
    "db",
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "socket_keepalive_options",
    "health_check_interval",
    "client_name",
    "decode_responses",
    "encoding",
    "encoding_errors",
    "protocol",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_cert_reqs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_check_hostname",
)


def _settings(kwargs: dict[str, Any], connection_class: type) -> dict[str, Any]:
    found = {k: v for k, v in kwargs.items() if k in _SETTINGS}
    if issubclass(connection_class, redis.SSLConnection):
        found["ssl"] = True
    return found


def async_cluster_from(client: Any) -> AsyncRedisCluster:
    """A ``redis.asyncio`` cluster client on the nodes of sync cluster
    ``client`` with its connection settings."""
    nodes = client.get_primaries()
    pool = client.get_redis_connection(nodes[0]).connection_pool
    kwargs = _settings(dict(pool.connection_kwargs), pool.connection_class)
    kwargs.pop("db", None)  # a cluster has only db 0
    seeds = [AsyncClusterNode(n.host, n.port) for n in nodes]
    return AsyncRedisCluster(startup_nodes=seeds, **kwargs)


class _AsyncSentinel(AsyncSentinel):
    """The async Sentinel manager, skipping a sentinel that still runs a
    failover (:func:`scheduler.backend.topology.failover_in_progress`)."""

    def check_master_state(self, state: dict[str, Any], service_name: str) -> bool:
        if topology.failover_in_progress(state):
            return False
        return bool(super().check_master_state(state, service_name))


def async_sentinel_from(pool: SentinelConnectionPool) -> aredis.Redis:
    """A ``redis.asyncio`` master client of the Sentinel service of ``pool``
    (a sync Sentinel-managed pool) on the same sentinels, with the same
    settings for the data nodes and for the sentinels."""
    manager: Any = pool.sentinel_manager
    sentinels = []
    sentinel_kwargs: dict[str, Any] = {}
    for sentinel in manager.sentinels:
        sentinel_pool = sentinel.connection_pool
        kw = dict(sentinel_pool.connection_kwargs)
        sentinels.append((kw["host"], int(kw["port"])))
        sentinel_kwargs = _settings(kw, sentinel_pool.connection_class)
    sentinel_kwargs.pop("db", None)
    data = _settings(dict(pool.connection_kwargs), pool.connection_class)
    async_manager = _AsyncSentinel(
        sentinels, min_other_sentinels=manager.min_other_sentinels, sentinel_kwargs=sentinel_kwargs
    )
    client: aredis.Redis = async_manager.master_for(pool.service_name, **data)
    return client


def changing(error: BaseException) -> bool:
    """True for an error reply of a server that is changing: ``TRYAGAIN``,
    ``CLUSTERDOWN``, ``READONLY`` (redis-py strips these codes from the
    message, so they are told by class) or ``NOREPLICAS``."""
    if isinstance(error, TryAgainError | ClusterDownError | ReadOnlyError):
        return True
    return isinstance(error, redis.ResponseError) and str(error).startswith("NOREPLICAS")


def _transient(error: BaseException, sentinel: bool) -> bool:
    """True if ``error`` may heal by retrying (see the module doc)."""
    if changing(error):
        return True
    return sentinel and isinstance(error, redis.ConnectionError | redis.TimeoutError)


async def retrying(call: Callable[[], Awaitable[T]], *, sentinel: bool) -> T:
    """Await ``call()``, again with backoff (50 ms doubling to 1 s) while it
    fails with a transient topology error, for up to
    :data:`scheduler.defaults.TOPOLOGY_RETRY` seconds. Every call made
    through here must be safe to repeat (scripts are; ``SADD`` is).
    ``sentinel``: connection errors count as transient too (a failover).

    Raises:
        redis.RedisError: the call failed for another reason, or kept failing.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + defaults.TOPOLOGY_RETRY
    delay = 0.05
    while True:
        try:
            return await call()
        except redis.RedisError as exc:
            if not _transient(exc, sentinel) or loop.time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
