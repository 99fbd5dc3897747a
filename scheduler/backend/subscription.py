"""Pub/sub subscriptions on a dedicated connection (for waiting without polling).

A subscription lives on its own client whose socket timeout exceeds the
longest wait (redis-py's default 5 s would cut a longer one), see
:func:`scheduler.backend.connection.blocking_client`.
"""

from __future__ import annotations

from typing import Any

import redis

from scheduler.backend.connection import blocking_client
from scheduler.backend.replies import text

__all__ = ["Subscription"]


class Subscription:
    """A subscription to one or more pub/sub channels.

    Args:
        client: the client whose server to subscribe on (its pool settings
            are copied).
        channels: channel names.
        max_wait: longest single :meth:`get` wait, seconds.

    Raises:
        redis.RedisError: the subscription could not be made.
    """

    def __init__(self, client: redis.Redis, channels: list[str], max_wait: float) -> None:
        self._conn = blocking_client(client, max_wait)
        # redis-py's PubSub is untyped in some releases; hence Any.
        self._pubsub: Any = self._conn.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(*channels)
        except BaseException:
            self.close()
            raise

    def get(self, timeout: float) -> str | None:
        """The next message's data as text, or None after ``timeout`` seconds.

        Raises:
            redis.RedisError: the connection failed.
        """
        msg = self._pubsub.get_message(timeout=timeout)
        return None if msg is None else text(msg.get("data"))

    def close(self) -> None:
        """Unsubscribe and close the connection (idempotent)."""
        self._pubsub.close()
        self._conn.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
