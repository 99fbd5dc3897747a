"""Redis client construction.

Two traps of redis-py 8 shape this module (docs/design.md, "Retries by redis-py and idempotency"):

* Retries: redis-py re-sends a command after a timeout or connection error.
  All our scripts are idempotent under such a repeat (see
  :mod:`scheduler.backend.scripts`). Clients made here retry 3 times with
  jittered exponential backoff (50 ms doubling, capped at 1 s): a Redis blip
  or failover of a second or so is ridden out, a longer outage surfaces as an
  error soon (``redis.Redis.from_url`` itself retries not at all in
  redis-py 8, while ``redis.Redis()`` retries 3 times). Long-running processes
  add their own patient retry at start-up (:mod:`scheduler.backend.startup`)
  and in their loops.
* Socket timeout: a blocking read (BLPOP, pub/sub wait) longer than the
  socket timeout fails. Blocking waits therefore use a separate client whose
  socket timeout exceeds the longest block (:func:`blocking_client`).
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import EqualJitterBackoff
from redis.connection import URL_QUERY_ARGUMENT_PARSERS, ConnectionPool, parse_url
from redis.retry import Retry

from scheduler import defaults
from scheduler.backend import topology
from scheduler.errors import ValidationError

__all__ = [
    "DEFAULT_SOCKET_TIMEOUT",
    "blocking_client",
    "check_url",
    "client_from_url",
    "server_time_ms",
]

#: Socket timeout of ordinary (non-blocking) calls, seconds.
DEFAULT_SOCKET_TIMEOUT = defaults.SOCKET_TIMEOUT


def _init_parameters(cls: type) -> set[str]:
    """Keyword parameters of ``cls.__init__`` along its MRO (public signatures)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                names.add(param.name)
    names.discard("self")
    return names


def check_url(url: str) -> None:
    """Check a Redis URL before any connection is made.

    redis-py's own parser (``redis.connection.parse_url``) is lenient in
    ways that hide mistakes: a database path that is not a number
    (``redis://host/abc``) silently means db 0, and an unknown query option
    (``?sslcacerts=...``, a typo) is passed on to the connection and fails
    with a ``TypeError`` at the first command. Here both are errors, as are
    an empty URL, a scheme other than ``redis://``, ``rediss://`` (TLS) and
    ``unix://``, a port that is not a number in 0-65535 and an option value
    of the wrong type (``?socket_timeout=abc``).

    The message never contains the URL (it may hold a password).

    Raises:
        ValidationError: the URL is unusable; says why.
    """
    if not url or not url.strip():
        raise ValidationError("the Redis URL is empty")
    if topology.check_special_url(url):  # redis+cluster://, redis+sentinel://
        return
    try:
        kwargs: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    except ValueError as exc:  # bad scheme, port, or option value
        raise ValidationError(str(exc)) from exc
    parts = urlsplit(url)
    if parts.scheme.lower() in ("redis", "rediss"):
        db = parts.path.strip("/")
        if db and not (db.isascii() and db.isdigit()):
            raise ValidationError(f"the database in the URL path must be a number, got {db!r}")
    connection_class = kwargs.get("connection_class", redis.Connection)
    known = (
        _init_parameters(connection_class)
        | _init_parameters(ConnectionPool)
        | set(URL_QUERY_ARGUMENT_PARSERS)
    )
    unknown = sorted(set(kwargs) - known)
    if unknown and unknown[0] in _init_parameters(redis.SSLConnection):
        raise ValidationError(f"option {unknown[0]!r} of the Redis URL needs a rediss:// (TLS) URL")
    if unknown:
        raise ValidationError(
            f"unknown option {unknown[0]!r} in the Redis URL's query string "
            "(see redis-py's connection options, e.g. ssl_ca_certs, socket_timeout)"
        )


def client_from_url(url: str, **kwargs: Any) -> topology.RedisClient:
    """Return a ``redis.Redis`` (or ``RedisCluster``) for ``url`` with sane timeouts.

    ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) and
    ``unix://`` URLs are accepted; AUTH/ACL credentials come from the URL.
    ``redis+cluster://`` and ``redis+sentinel://`` URLs give a Redis Cluster
    client or a Sentinel-managed master client (forms and checks in
    :mod:`scheduler.backend.topology`). Any other URL is checked first
    (:func:`check_url`). Keyword arguments override the defaults (socket
    timeout 10 s, connect timeout 5 s, health check every 30 s, 3 retries
    of a command after a connection error or timeout with 50 ms .. 1 s
    jittered backoff; for
    ``rediss://``, certificate and host name verification on -- pass a
    private CA with ``?ssl_ca_certs=/path/ca.pem``).

    Raises:
        ValidationError: the URL is unusable (:func:`check_url`).
    """
    options: dict[str, Any] = {
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
        "socket_connect_timeout": defaults.CONNECT_TIMEOUT,
        "health_check_interval": defaults.HEALTH_CHECK_INTERVAL,
        "retry": Retry(EqualJitterBackoff(cap=1.0, base=0.05), 3),
    }
    if urlsplit(url).scheme.lower() == "rediss":
        # Verify the server's certificate and host name whatever the redis-py
        # version's defaults (older ones did not check the host name); the
        # URL's own ssl_* options still win (redis-py applies them last).
        options.update(ssl_cert_reqs="required", ssl_check_hostname=True)
    options.update(kwargs)
    special = topology.client_for_special_url(url, options)
    if special is not None:  # redis+cluster:// or redis+sentinel://
        return special
    check_url(url)
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


def server_time_ms(client: redis.Redis, key: str | None = None) -> int:
    """The Redis server's clock (``TIME``), ms since the Unix epoch.

    On a Redis Cluster client: the clock of the master serving ``key``'s
    slot, or of the cluster client's default node without ``key``.
    """
    if key is not None and topology.is_cluster(client):
        cluster: Any = client
        sec, usec = cluster.time(target_nodes=cluster.get_node_from_key(key))
    else:
        sec, usec = client.time()
    return int(sec) * 1000 + int(usec) // 1000
