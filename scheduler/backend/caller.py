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
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis

__all__ = ["ScriptCaller"]

# hiredis (a dependency, via redis[hiredis]) packs a whole command in C;
# redis-py's own packer adds per-argument Python work.
_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover
    _hiredis_pack = None


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
        # redis-py's Connection methods are untyped; hence Any.
        self._conns: list[Any] = []

    def _conn(self) -> Any:
        conn: Any = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            pool = self._client.connection_pool
            conn = pool.make_connection()
            self._local.conn = conn
            self._local.pid = os.getpid()
            with self._lock:
                self._conns.append(conn)
        return conn

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
        for attempt in (1, 2) if retry else (2,):
            if self._closed:
                raise redis.ConnectionError("script caller closed")
            conn = self._conn()
            try:
                conn.send_packed_command([b"".join(_pack(conn, c) for c in commands)])
                return [_read(conn) for _ in commands]
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                conn.disconnect()
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
            conn.disconnect()
            raise
        return replies

    def close(self) -> None:
        """Close every connection this caller opened (in any thread) and refuse
        further calls. A call blocked in another thread fails at once."""
        self._closed = True
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            # Best effort: a connection in use by another thread may refuse
            # (fakeredis's sockets are not thread-safe); it fails on its own.
            with contextlib.suppress(Exception):
                conn.disconnect()
