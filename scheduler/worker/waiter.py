"""Blocking wait for new work, so idle workers do not poll.

The waiter thread blocks in ``BLPOP`` on the queues' wake lists (markers
pushed by enqueue, retry, release, resume and by a lease that left work
behind) on its own connection, whose socket timeout exceeds the block time
(redis-py's default 5 s would otherwise break a long block). When a marker
arrives -- or the block times out -- it tells the dispatcher through its
inbox. It blocks only when the dispatcher asks (i.e. when it has free slots
and found nothing to lease), so a busy worker never swallows markers meant
for idle ones.

Redis Cluster note: one BLPOP spans all the worker's queues, which requires
them to be on one node (always true on a single server).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

import redis

from scheduler.connection import blocking_client

__all__ = ["Waiter"]

log = logging.getLogger("scheduler.worker")


class Waiter:
    """Background ``BLPOP`` on wake keys, reporting to an inbox.

    Args:
        client: the app's client (settings are copied for a dedicated one).
        wake_keys: wake list keys, one per queue.
        inbox: the dispatcher's inbox; receives ``("wake", key_or_None)``.
        max_block: longest single block, seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        wake_keys: Sequence[str],
        inbox: queue.SimpleQueue[tuple[str, Any]],
        max_block: float = 30.0,
    ) -> None:
        self._client = blocking_client(client, max_block)
        self._keys = list(wake_keys)
        self._inbox = inbox
        self._max_block = max_block
        self._armed = threading.Event()
        self._closed = threading.Event()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="scheduler-waiter", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> bool:
        """True while a wait is requested or in progress."""
        return self._busy or self._armed.is_set()

    def request(self) -> None:
        """Ask for one blocking wait (no-op if one is already pending)."""
        if not self.waiting:
            self._armed.set()

    def close(self) -> None:
        """Stop the thread (it exits after its current block at the latest)."""
        self._closed.set()
        self._armed.set()
        with contextlib.suppress(redis.RedisError):
            self._client.close()

    def _run(self) -> None:
        while True:
            self._armed.wait()
            if self._closed.is_set():
                return
            self._busy = True
            self._armed.clear()
            key: str | None = None
            try:
                popped = self._client.blpop(self._keys, timeout=self._max_block)
                if popped is not None:
                    raw = popped[0]
                    key = raw.decode() if isinstance(raw, bytes) else str(raw)
            except (redis.RedisError, OSError) as exc:
                if self._closed.is_set():
                    return
                log.warning("wait for new jobs failed: %s; retrying in 1 s", exc)
                self._closed.wait(1.0)
            finally:
                self._busy = False
            self._inbox.put(("wake", key))
