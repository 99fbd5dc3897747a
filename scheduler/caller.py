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
(see :mod:`scheduler.scripts`), so this is the same guarantee redis-py's own
retry gives, with the same safety.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis

__all__ = ["ScriptCaller"]


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

    def call_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send ``commands`` in one write and return their replies in order.

        A command's error reply is returned as its ``redis.ResponseError``
        (e.g. ``NoScriptError``) instead of being raised.

        Raises:
            redis.ConnectionError, redis.TimeoutError: the server could not be
                reached twice in a row.
        """
        for attempt in (1, 2):
            if self._closed:
                raise redis.ConnectionError("script caller closed")
            conn = self._conn()
            try:
                conn.send_packed_command(conn.pack_commands(commands))
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(conn.read_response())
                    except redis.ResponseError as exc:
                        replies.append(exc)
                return replies
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                conn.disconnect()
                if attempt == 2 or self._closed:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

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
