"""A lean call path for script calls: redis-py connections, without the client wrapper.

Measured here (``docs/benchmarks.md``): redis-py 8's ``Redis.execute_command``
adds about 40-60 us per call on top of the round trip (retry wrapper,
observability hooks, pool checkout and release), which is most of the
budget of a fast job queue. Script calls -- the hot path -- therefore go
through :class:`ScriptCaller`: each thread keeps one connection of its own,
created from the client's pool settings (host, TLS, credentials, db, socket
timeouts, ``decode_responses``), and uses redis-py's own ``pack_commands``,
``send_packed_command`` and ``read_response`` (the hiredis parser when
installed). Several calls go out in one write and their replies are read in
order (a pipeline without MULTI).

Retry: on a connection error or timeout the connection is re-opened and
the calls are sent once more. Every script is idempotent under a repeat
(see :mod:`scheduler.backend.scripts`), so this is the same guarantee redis-py's own
retry gives, with the same safety.

Connections are taken from the client's own pool (``get_connection``), never
built by hand, so a Sentinel-managed pool asks the sentinels for the current
master on every (re)connect. On such a pool a new connection is checked with
``ROLE`` (a stale sentinel answer must not send writes to a replica), and
``READONLY``/``NOREPLICAS`` replies and connection errors are retried on a
new connection for up to :data:`scheduler.defaults.TOPOLOGY_RETRY` seconds
-- a failover in progress (see ``docs/operating.md``, "Running with
Sentinel").

On a Redis Cluster client (``redis.cluster.RedisCluster``) there is no single
pool: each command goes through the cluster client, which routes it by its
first key's slot and follows ``MOVED``/``ASK``; ``TRYAGAIN`` (a slot
migration) and ``CLUSTERDOWN`` (a failover) are retried here for up to the
same time (:class:`ClusterCalls`).

A thread may bound these retries further with :func:`retries_until`: a
worker that is stopping gives up at the end of its grace period, so a
failover that outlasts the grace period does not hold its shutdown for
another ``TOPOLOGY_RETRY`` (its leases then expire and the jobs run again:
at-least-once).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis
from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError

from scheduler import defaults
from scheduler.backend import topology

__all__ = ["ClusterCalls", "ScriptCaller", "retries_until"]

#: Error replies meaning "this server does not take writes now": the old
#: master during a Sentinel failover.
_NOT_WRITABLE = ("READONLY", "NOREPLICAS")

# hiredis (a dependency, via redis[hiredis]) packs a whole command in C;
# redis-py's own packer adds per-argument Python work.
_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover
    _hiredis_pack = None


_bounds = threading.local()


@contextlib.contextmanager
def retries_until(deadline: Callable[[], float | None]) -> Iterator[None]:
    """Within the block, this thread's topology retries (a Sentinel failover,
    a cluster slot migration or failover: see the module docstring) give up
    once ``time.monotonic()`` reaches ``deadline()`` -- or after
    :data:`scheduler.defaults.TOPOLOGY_RETRY`, whichever comes first.

    ``deadline`` is asked before each retry, so it may change while a call
    is retrying (a worker's stop deadline appears when it is stopped); None
    means no bound beyond ``TOPOLOGY_RETRY``. A call that gives up raises
    (or returns, for error replies) what its last attempt got, as it does
    after ``TOPOLOGY_RETRY``. Blocks nest: the innermost bound applies.
    """
    previous = getattr(_bounds, "deadline", None)
    _bounds.deadline = deadline
    try:
        yield
    finally:
        _bounds.deadline = previous


def _give_up_at(started: float) -> float:
    """When a call first tried at ``started`` stops retrying (monotonic s)."""
    limit = started + defaults.TOPOLOGY_RETRY
    bound: Callable[[], float | None] | None = getattr(_bounds, "deadline", None)
    if bound is not None:
        extra = bound()
        if extra is not None:
            limit = min(limit, extra)
    return limit


def _pack(conn: Any, command: Sequence[Any]) -> bytes:
    if _hiredis_pack is not None:
        packed: bytes = _hiredis_pack(tuple(command))
        return packed
    return b"".join(conn.pack_command(*command))


def _read(conn: Any) -> Any:
    try:
        return conn.read_response()
    except redis.ResponseError as exc:
        return exc


class ScriptCaller:
    """Sends commands on a per-thread connection to the server of ``client``.

    Args:
        client: a ``redis.Redis`` whose connection pool settings are copied.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._local = threading.local()
        self._lock = threading.Lock()
        self._closed = False
        self._cluster = ClusterCalls(client) if topology.is_cluster(client) else None
        self._sentinel = topology.sentinel_pool(client) is not None
        # redis-py's Connection methods are untyped; hence Any.
        self._conns: list[Any] = []

    def _conn(self) -> Any:
        conn: Any = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            # The pool's own API: a Sentinel pool connects to the current master.
            conn = self._client.connection_pool.get_connection()
            self._local.conn = conn
            self._local.pid = os.getpid()
            self._local.checked = False
            with self._lock:
                self._conns.append(conn)
        if self._sentinel and not self._local.checked:
            # connect() asks the sentinels for the master's address; a send
            # on a dropped connection would reconnect to its last address
            # (redis-py 8.2 reconnects there without the lookup) -- after a
            # failover, the old master, now a replica, again and again.
            conn.connect()
            _check_master(conn)
            self._local.checked = True
        return conn

    def _drop(self, conn: Any) -> None:
        conn.disconnect()
        self._local.checked = False

    def call_many(self, commands: Sequence[Sequence[Any]], *, retry: bool = True) -> list[Any]:
        """Send ``commands`` in one write and return their replies in order.

        A command's error reply is returned as its ``redis.ResponseError``
        (e.g. ``NoScriptError``) instead of being raised. With ``retry``
        (default) a connection error or timeout re-sends the commands once;
        without it the error is raised at once (for a blocking read, whose
        repeat could lose or wait behind what the first send took).

        Raises:
            redis.ConnectionError, redis.TimeoutError: the server could not be
                reached (twice in a row with ``retry``).
        """
        if self._cluster is not None:
            return self._cluster.call_many(commands)
        if self._sentinel and retry:
            return self._call_failing_over(commands)
        return self._call_twice(commands, retry=retry)

    def _call_failing_over(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """:meth:`_call_twice`, retried while a Sentinel failover is in progress."""
        started = time.monotonic()
        delay = 0.05
        while True:
            try:
                replies = self._call_twice(commands)
                if not any(_not_writable(r) for r in replies):
                    return replies
                error: Exception = next(r for r in replies if _not_writable(r))
                self._drop(self._conn())
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                error = exc
            if self._closed or time.monotonic() + delay > _give_up_at(started):
                if isinstance(error, redis.ResponseError):
                    return replies
                raise error
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _call_twice(self, commands: Sequence[Sequence[Any]], *, retry: bool = True) -> list[Any]:
        for attempt in (1, 2) if retry else (2,):
            if self._closed:
                raise redis.ConnectionError("script caller closed")
            conn = self._conn()
            try:
                conn.send_packed_command([b"".join(_pack(conn, c) for c in commands)])
                if self._closed:
                    # close() ran since the check above: it missed this
                    # connection, or redis-py reconnected the one it closed
                    # to send. Cut it here, or a BLPOP would block on it with
                    # the commands behind it still to run.
                    self._drop(conn)
                    raise redis.ConnectionError("script caller closed")
                return [_read(conn) for _ in commands]
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self._drop(conn)
                if attempt == 2 or self._closed:
                    raise
            except AttributeError:
                # redis-py's connection lost its socket to a concurrent close().
                if not self._closed:
                    raise
                raise redis.ConnectionError("script caller closed") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def call_streamed(self, commands: Iterable[Sequence[Any]], window: int = 2) -> list[Any]:
        """Send each command as the iterator yields it, reading replies so that
        at most ``window`` are outstanding; return all replies in order (error
        replies as exceptions). Not retried here: on a connection error the
        caller decides (see :meth:`scheduler.backend.scripts.Scripts.run_streamed`).

        Raises:
            redis.ConnectionError, redis.TimeoutError: the connection failed.
        """
        if self._closed:
            raise redis.ConnectionError("script caller closed")
        if self._cluster is not None or self._sentinel:
            return self.call_many(list(commands))
        conn = self._conn()
        replies: list[Any] = []
        outstanding = 0
        try:
            for command in commands:
                conn.send_packed_command([_pack(conn, command)])
                outstanding += 1
                if outstanding > window:
                    replies.append(_read(conn))
                    outstanding -= 1
            while outstanding:
                replies.append(_read(conn))
                outstanding -= 1
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            self._drop(conn)
            raise
        return replies

    def close(self) -> None:
        """Close every connection this caller opened (in any thread) and refuse
        further calls. A call blocked in another thread fails at once."""
        self._closed = True
        with self._lock:
            conns, self._conns = self._conns, []
        pool = self._client.connection_pool if self._cluster is None else None
        for conn in conns:
            # Best effort: a connection in use by another thread may refuse
            # (fakeredis's sockets are not thread-safe); it fails on its own.
            with contextlib.suppress(Exception):
                conn.disconnect()
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.release(conn)


def _not_writable(reply: object) -> bool:
    # redis-py strips the READONLY code from the message (ReadOnlyError).
    if isinstance(reply, ReadOnlyError):
        return True
    return isinstance(reply, redis.ResponseError) and str(reply).startswith(_NOT_WRITABLE)


def _check_master(conn: Any) -> None:
    """Raise ``redis.ConnectionError`` (after closing ``conn``) unless the
    server of ``conn`` says it is a master (``ROLE``)."""
    conn.send_command("ROLE")
    role = conn.read_response()
    name = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
    if name != "master":
        conn.disconnect()
        raise redis.ConnectionError(f"{conn.host}:{conn.port} is a {name}, not the master")


class ClusterCalls:
    """Script calls on a Redis Cluster client, one command at a time.

    The cluster client routes each command by the slot of its first key and
    follows ``MOVED``/``ASK`` itself (refreshing its slot map);
    ``TRYAGAIN`` (a multi-key command during its slot's migration),
    ``CLUSTERDOWN`` (a failover in progress) and ``NOREPLICAS``/``READONLY``
    (a master with ``min-replicas-to-write`` whose replicas are not linked
    yet, a node just demoted) are retried here with backoff
    for up to :data:`scheduler.defaults.TOPOLOGY_RETRY` seconds (or this
    thread's :func:`retries_until` bound). Every script
    is idempotent under a repeat, so retrying is safe.

    Args:
        client: a ``redis.cluster.RedisCluster``.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def call_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run ``commands`` in order; error replies are returned as exceptions.

        Raises:
            redis.ConnectionError, redis.TimeoutError: a node stayed unreachable.
            redis.exceptions.TryAgainError, ClusterDownError: the slot stayed
                unavailable for :data:`scheduler.defaults.TOPOLOGY_RETRY` seconds.
        """
        return [self._one(command) for command in commands]

    def _one(self, command: Sequence[Any]) -> Any:
        started = time.monotonic()
        delay = 0.01
        while True:
            try:
                return self._client.execute_command(*command)
            except (TryAgainError, ClusterDownError):
                if time.monotonic() + delay > _give_up_at(started):
                    raise
            except redis.ResponseError as exc:
                # NOREPLICAS: a master with min-replicas-to-write whose
                # replicas are not linked yet (just after a failover).
                if not _not_writable(exc) or time.monotonic() + delay > _give_up_at(started):
                    return exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
