"""Redis client construction.

Two traps of redis-py 8 shape this module (docs/design.md, "Retries by redis-py and idempotency"):

* Retries: redis-py re-sends a command after a timeout or connection error.
  All our scripts are idempotent under such a repeat (see
  :mod:`scheduler.backend.scripts`), so the default retry policy is kept for
  ordinary calls.
* Socket timeout: a blocking read (BLPOP, pub/sub wait) longer than the
  socket timeout fails. Blocking waits therefore use a separate client whose
  socket timeout exceeds the longest block (:func:`blocking_client`).
"""

from __future__ import annotations

from typing import Any

import redis

from scheduler import defaults
from scheduler.backend import topology

__all__ = ["DEFAULT_SOCKET_TIMEOUT", "blocking_client", "client_from_url", "server_time_ms"]

#: Socket timeout of ordinary (non-blocking) calls, seconds.
DEFAULT_SOCKET_TIMEOUT = defaults.SOCKET_TIMEOUT


def client_from_url(url: str, **kwargs: Any) -> redis.Redis:
    """Return a ``redis.Redis`` for ``url`` with sane timeouts.

    ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) and
    ``unix://`` URLs are accepted; AUTH/ACL credentials come from the URL.
    ``redis+cluster://`` and ``redis+sentinel://`` URLs give a Redis Cluster
    client or a Sentinel-managed master client
    (:mod:`scheduler.backend.topology`).
    Keyword arguments override the defaults (socket timeout 10 s, connect
    timeout 5 s, health check every 30 s).
    """
    options: dict[str, Any] = {
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
        "socket_connect_timeout": defaults.CONNECT_TIMEOUT,
        "health_check_interval": defaults.HEALTH_CHECK_INTERVAL,
    }
    options.update(kwargs)
    special = topology.client_for_special_url(url, options)
    if special is not None:  # redis+cluster:// or redis+sentinel://
        return special
    return redis.Redis.from_url(url, **options)


def blocking_client(client: redis.Redis, block_seconds: float) -> redis.Redis:
    """Return a new client to the same server as ``client`` for blocking calls.

    Its socket timeout is ``block_seconds + 5`` so that a BLPOP of up to
    ``block_seconds`` never trips it. The connection settings (host, TLS,
    credentials, db, ...) are copied from ``client``'s pool. On a Sentinel
    client the new pool is Sentinel-managed too (it asks the sentinels for
    the current master); on a cluster client it is a new cluster client.
    """
    if topology.is_cluster(client):
        return topology.cluster_copy(client, block_seconds + 5.0)
    sentinel = topology.sentinel_pool(client)
    if sentinel is not None:
        return topology.sentinel_copy(sentinel, block_seconds + 5.0)
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["socket_timeout"] = block_seconds + 5.0
    new_pool = redis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=4, **kwargs
    )
    return redis.Redis(connection_pool=new_pool)


def server_time_ms(client: redis.Redis) -> int:
    """The Redis server's clock (``TIME``), ms since the Unix epoch."""
    sec, usec = client.time()
    return int(sec) * 1000 + int(usec) // 1000
