"""Pub/sub subscriptions on a dedicated connection (for waiting without polling).

A subscription lives on its own client whose socket timeout exceeds the
longest wait (redis-py's default 5 s would cut a longer one), see
:func:`scheduler.backend.connection.blocking_client`.

Two kinds: plain (``SUBSCRIBE``; on a Redis Cluster the client's pub/sub
connection gets every ``PUBLISH`` of the cluster) and sharded
(``SSUBSCRIBE``, Redis >= 7: on a cluster the connection goes to the master
owning the channel's slot, and redis-py's cluster pub/sub follows the slot
through a migration or failover). The constructor returns only once the
server confirmed the subscription, so a message published after it returns
is never missed.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from scheduler.backend.connection import blocking_client
from scheduler.backend.replies import text

__all__ = ["Subscription"]

_DATA = ("message", "smessage")
_CONFIRMS = ("subscribe", "ssubscribe")


class Subscription:
    """A subscription to one or more pub/sub channels.

    Args:
        client: the client whose server to subscribe on (its pool settings
            are copied).
        channels: channel names.
        max_wait: longest single :meth:`get` wait, seconds.
        sharded: ``SSUBSCRIBE`` (shard channels, Redis >= 7) instead of
            ``SUBSCRIBE``.

    Raises:
        redis.RedisError: the subscription could not be made or was not
            confirmed within ``max_wait`` seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        channels: list[str],
        max_wait: float,
        *,
        sharded: bool = False,
    ) -> None:
        self._conn = blocking_client(client, max_wait)
        self._sharded = sharded
        # redis-py's PubSub is untyped in some releases; hence Any.
        self._pubsub: Any = self._conn.pubsub()
        try:
            if sharded:
                self._pubsub.ssubscribe(*channels)
            else:
                self._pubsub.subscribe(*channels)
            self._confirmed(len(channels), max_wait)
        except BaseException:
            self.close()
            raise

    def _next(self, timeout: float) -> Any:
        if self._sharded:
            return self._pubsub.get_sharded_message(timeout=timeout)
        return self._pubsub.get_message(timeout=timeout)

    def _confirmed(self, n: int, max_wait: float) -> None:
        """Wait for the server's ``n`` confirmations (a data message meanwhile
        is dropped: it cannot concern a wait that has not started)."""
        deadline = time.monotonic() + max_wait
        while n > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError("subscription not confirmed")
            msg = self._next(left)
            if msg is not None and text(msg.get("type")) in _CONFIRMS:
                n -= 1

    def get(self, timeout: float) -> str | None:
        """The next message's data as text, or None after ``timeout`` seconds
        (or earlier, after a control message).

        Raises:
            redis.RedisError: the connection failed.
        """
        msg = self._next(timeout)
        if msg is None or text(msg.get("type")) not in _DATA:
            return None
        return text(msg.get("data"))

    def close(self) -> None:
        """Unsubscribe and close the connection (idempotent)."""
        self._pubsub.close()
        self._conn.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
