"""Redis Cluster and Redis Sentinel: URLs, clients, and what kind a client is.

URL forms (see ``docs/operating.md``, "Running on Redis Cluster" and
"Running with Sentinel"):

* ``redis+cluster://[user:password@]host:port[,host:port...]`` -- a Redis
  Cluster; the listed nodes are seeds (one reachable seed is enough; the
  rest of the topology is discovered). ``rediss+cluster://`` uses TLS.
* ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``
  -- the master of Sentinel service ``service`` (the form of
  ``redis-sentinel-url`` and Celery's ``sentinel://`` with the service in the
  path); the listed nodes are sentinels. ``user:password`` authenticate to
  the data nodes; ``?sentinel_username=...&sentinel_password=...`` to the
  sentinels. ``rediss+sentinel://`` uses TLS to both.

Query options for both: ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``,
``ssl_cert_reqs`` (``none``/``optional``/``required``) for TLS.

A client object can also be passed directly (``redis.cluster.RedisCluster``,
or ``Sentinel(...).master_for(service)``); :func:`is_cluster` and
:func:`sentinel_pool` tell the rest of the storage layer which kind it has.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, ReadOnlyError, TryAgainError
from redis.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool

from scheduler.errors import ValidationError

__all__ = [
    "RedisClient",
    "as_redis",
    "check_special_url",
    "client_for_special_url",
    "close_quietly",
    "cluster_copy",
    "explain_error",
    "failover_in_progress",
    "is_cluster",
    "node_client",
    "node_client_at",
    "sentinel_copy",
    "sentinel_pool",
]

_CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
_SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_SENTINEL_AUTH = ("sentinel_username", "sentinel_password")


#: What the scheduler accepts as a client: a single server or Sentinel master
#: client (``redis.Redis``) or a Redis Cluster client (``RedisCluster``).
RedisClient: TypeAlias = "redis.Redis | RedisCluster"


def as_redis(client: RedisClient) -> redis.Redis:
    """``client`` typed as ``redis.Redis`` for the storage layer.

    ``RedisCluster`` is not a ``redis.Redis`` subclass but offers the same
    command methods; the storage layer branches on :func:`is_cluster` where
    the two differ (script calls, blocking waits, pub/sub, stream reads).
    """
    result: Any = client
    return result  # type: ignore[no-any-return]


def is_cluster(client: object) -> bool:
    """True if ``client`` is a ``redis.cluster.RedisCluster``."""
    return isinstance(client, RedisCluster)


def sentinel_pool(client: object) -> SentinelConnectionPool | None:
    """The Sentinel-managed pool of ``client``, or None if it has none."""
    pool = getattr(client, "connection_pool", None)
    return pool if isinstance(pool, SentinelConnectionPool) else None


def _split_url(url: str) -> tuple[str, str, str, dict[str, str]]:
    """``(scheme, netloc, path, query)`` of a multi-host URL (``urlsplit``
    refuses several hosts in one netloc)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValidationError("URL has no scheme")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    options: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        options[name] = values[-1]
    return scheme.lower(), netloc, path, options


def _credentials(netloc: str) -> tuple[str | None, str | None, str]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return None, None, netloc
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None), hosts


def _hosts(hosts: str, default_port: int) -> list[tuple[str, int]]:
    found = []
    for raw in hosts.split(","):
        item = raw.strip()
        if not item:
            continue
        host, colon, port = item.rpartition(":")
        if not colon:
            host, port = item, str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValidationError(f"bad host:port {item!r}")
        found.append((host, int(port)))
    if not found:
        raise ValidationError("URL names no host")
    return found


def _tls(tls: bool, options: dict[str, str]) -> dict[str, Any]:
    if not tls:
        return {}
    kwargs: dict[str, Any] = {"ssl": True}
    for name in _TLS_OPTIONS:
        if name in options:
            kwargs[name] = options[name]
    return kwargs


def _unknown(options: dict[str, str], known: tuple[str, ...]) -> None:
    extra = sorted(set(options) - set(known))
    if extra:
        raise ValidationError(f"unknown URL option(s): {', '.join(extra)}")


def client_for_special_url(url: str, options: dict[str, Any]) -> redis.Redis | None:
    """A client for a cluster or Sentinel ``url``, or None for any other URL.

    Args:
        url: the URL (forms in the module docstring).
        options: client keyword arguments (timeouts, ...), applied to every
            node (and to the sentinels).

    Raises:
        ValueError: a malformed cluster or Sentinel URL.
        redis.ConnectionError: no seed node of a cluster answered, or the
            cluster does not cover all 16384 slots (one-line message).
    """
    scheme = url.partition("://")[0].lower()
    if scheme in _CLUSTER_SCHEMES:
        return _cluster_from_url(url, options)
    if scheme in _SENTINEL_SCHEMES:
        return _sentinel_from_url(url, options)
    return None


def check_special_url(url: str) -> bool:
    """True if ``url`` is a well-formed cluster or Sentinel URL, False if it
    is another kind of URL; no connection is made.

    Raises:
        ValidationError: a malformed cluster or Sentinel URL (the message
            never contains the URL, which may hold a password).
    """
    scheme = url.partition("://")[0].lower()
    if scheme in _CLUSTER_SCHEMES:
        _parse_cluster(url, {})
        return True
    if scheme in _SENTINEL_SCHEMES:
        _parse_sentinel(url, {})
        return True
    return False


def _cluster_from_url(url: str, options: dict[str, Any]) -> redis.Redis:
    return _make_cluster(*_parse_cluster(url, options))


def _parse_cluster(
    url: str, options: dict[str, Any]
) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    scheme, netloc, path, query = _split_url(url)
    _unknown(query, _TLS_OPTIONS)
    if path.strip("/") not in ("", "0"):
        raise ValidationError("Redis Cluster has only database 0")
    user, password, hosts = _credentials(netloc)
    seeds = _hosts(hosts, 6379)
    kwargs = dict(options, username=user, password=password)
    kwargs.update(_tls(_CLUSTER_SCHEMES[scheme], query))
    return seeds, kwargs


def _make_cluster(seeds: list[tuple[str, int]], kwargs: dict[str, Any]) -> redis.Redis:
    try:
        nodes = [ClusterNode(h, p) for h, p in seeds]  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        client = RedisCluster(startup_nodes=nodes, **kwargs)
    except redis.exceptions.RedisClusterException as exc:
        names = ",".join(f"{h}:{p}" for h, p in seeds)
        message = " ".join(str(exc).split())
        raise redis.ConnectionError(f"Redis Cluster at {names}: {message}") from None
    # RedisCluster is not a redis.Redis subclass, but offers the same command
    # API; the storage layer branches on is_cluster() where they differ.
    result: Any = client
    return result  # type: ignore[no-any-return]


def explain_error(exc: BaseException) -> str | None:
    """One line saying what a Redis Cluster or replica error reply means for
    the user (redis-py strips the error code, leaving e.g. a bare
    ``"9034 127.0.0.1:7502"``), or None for any other error."""
    if isinstance(exc, MovedError | AskError):
        return (
            f"the server is a Redis Cluster node (slot {exc.slot_id} is served by "
            f"{exc.host}:{exc.port}): use a redis+cluster://host:port[,host:port...] URL"
        )
    if isinstance(exc, ClusterDownError):
        return f"the Redis Cluster is down (CLUSTERDOWN {exc}); wait for it, or check its slots"
    if isinstance(exc, TryAgainError):
        return f"a slot is being migrated (TRYAGAIN {exc}); try again"
    if isinstance(exc, ReadOnlyError):
        return (
            f"the server is a replica (READONLY {exc}): point the URL at the master, "
            "or use a redis+sentinel:// URL"
        )
    return None


def failover_in_progress(state: dict[str, Any]) -> bool:
    """True if a sentinel's ``SENTINEL MASTERS`` entry ``state`` (as
    redis-py parses it: flags as text with RESP2, as a set with RESP3) says
    it is running a failover of that master."""
    flags = state.get("flags", "")
    names = flags if isinstance(flags, set) else set(str(flags).split(","))
    return "failover_in_progress" in names


class _Sentinel(Sentinel):
    """redis-py's Sentinel manager with a one-line "no master" error (its own
    message embeds the repr of every sentinel client), which skips a
    sentinel that is still running a failover.

    The sentinel leading a failover keeps reporting the *old* master in
    ``SENTINEL MASTERS`` (flag ``failover_in_progress``) until every replica
    is reconfigured -- seconds, up to ``failover-timeout`` -- while the old
    master is already a replica (``READONLY``) and the others report the
    promoted one. redis-py's ``discover_master`` takes the first sentinel's
    answer, so a client asking the leader reconnected to the old master
    again and again for that whole time.
    """

    def check_master_state(self, state: dict[str, Any], service_name: str) -> bool:
        if failover_in_progress(state):
            return False
        return bool(super().check_master_state(state, service_name))  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated

    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            found: tuple[str, int] = super().discover_master(service_name)
        except MasterNotFoundError:
            hosts = ",".join(
                f"{c.connection_pool.connection_kwargs.get('host')}:"
                f"{c.connection_pool.connection_kwargs.get('port')}"
                for c in self.sentinels
            )
            raise MasterNotFoundError(
                f"no master for Sentinel service {service_name!r}: the sentinels at "
                f"{hosts} do not know it, or none of them answered"
            ) from None
        return found


def _sentinel_from_url(url: str, options: dict[str, Any]) -> redis.Redis:
    sentinels, service, kwargs, sentinel_kwargs = _parse_sentinel(url, options)
    manager = _Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs, **options, **kwargs["tls"])
    client: redis.Redis = manager.master_for(
        service, db=kwargs["db"], username=kwargs["username"], password=kwargs["password"]
    )
    return client


def _parse_sentinel(
    url: str, options: dict[str, Any]
) -> tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]:
    scheme, netloc, path, query = _split_url(url)
    _unknown(query, _TLS_OPTIONS + _SENTINEL_AUTH)
    user, password, hosts = _credentials(netloc)
    sentinels = _hosts(hosts, 26379)
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2 or not parts[0].strip():
        raise ValidationError("Sentinel URL needs /<service>[/<db>] after the hosts")
    service = unquote(parts[0])
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValidationError(f"bad database number {parts[1]!r}")
    db = int(parts[1]) if len(parts) == 2 else 0
    tls = _tls(_SENTINEL_SCHEMES[scheme], query)
    sentinel_kwargs = dict(options, **tls)
    sentinel_kwargs.pop("health_check_interval", None)
    for name in _SENTINEL_AUTH:
        if name in query:
            sentinel_kwargs[name.removeprefix("sentinel_")] = query[name]
    kwargs = {"tls": tls, "db": db, "username": user, "password": password}
    return sentinels, service, kwargs, sentinel_kwargs


def node_client(client: redis.Redis, key: str, socket_timeout: float) -> redis.Redis:
    """A new single-node client to the master of ``key``'s slot on cluster
    ``client``, with the cluster's connection settings and ``socket_timeout``
    (for a blocking call that must go to one node).

    Raises:
        redis.RedisError: the slot has no known master.
    """
    cluster: Any = client
    node = cluster.get_node_from_key(key)
    return node_client_at(client, node.host, node.port, socket_timeout)


def node_client_at(client: redis.Redis, host: str, port: int, socket_timeout: float) -> redis.Redis:
    """A new single-node client to ``host:port`` with the connection settings
    of cluster ``client`` and ``socket_timeout`` (e.g. the node a ``MOVED``
    reply names)."""
    cluster: Any = client
    node = cluster.get_primaries()[0]
    kwargs = dict(cluster.get_redis_connection(node).connection_pool.connection_kwargs)
    kwargs.update(host=host, port=int(port), socket_timeout=socket_timeout)
    pool = redis.ConnectionPool(max_connections=4, **kwargs)
    return redis.Redis(connection_pool=pool)


def cluster_copy(client: redis.Redis, socket_timeout: float) -> redis.Redis:
    """A new cluster client on the same cluster as ``client`` with
    ``socket_timeout`` (for blocking calls and subscriptions)."""
    cluster: Any = client
    nodes = cluster.get_primaries()
    kwargs = dict(cluster.get_redis_connection(nodes[0]).connection_pool.connection_kwargs)
    for name in ("host", "port", "connection_pool", "retry"):
        kwargs.pop(name, None)
    kwargs["socket_timeout"] = socket_timeout
    return _make_cluster([(n.host, n.port) for n in nodes], kwargs)


def close_quietly(client: Any) -> None:
    """Close ``client``, ignoring errors (it may already be broken)."""
    with contextlib.suppress(Exception):
        client.close()


def sentinel_copy(pool: SentinelConnectionPool, socket_timeout: float) -> redis.Redis:
    """A new client on a new Sentinel-managed pool of the same service as
    ``pool`` (so every connection asks the sentinels for the current
    master), with ``socket_timeout``."""
    kwargs = dict(pool.connection_kwargs)
    kwargs.pop("connection_pool", None)  # the old pool's proxy; the new pool sets its own
    kwargs["socket_timeout"] = socket_timeout
    new_pool = SentinelConnectionPool(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        pool.service_name,
        pool.sentinel_manager,
        is_master=pool.is_master,
        check_connection=pool.check_connection,
        connection_class=pool.connection_class,
        max_connections=4,
        **kwargs,
    )
    return redis.Redis(connection_pool=new_pool)
