"""Waiting for new work on a Redis Cluster: one blocking wait per slot.

On one server a worker blocks in a single ``BLPOP`` over all its queues'
wake lists (:class:`scheduler.backend.waiting.BlockingLease`). On a cluster
that fails with ``CROSSSLOT`` as soon as two queues hash to different slots
-- even on the same master -- so :class:`ClusterBlockingLease` keeps one
watcher per slot: a thread with its own connection to the slot's master,
blocked in ``BLPOP`` on that slot's wake lists while the worker waits. The
first marker wakes the wait (within a round trip); the lease is then an
ordinary script call (one more round trip than the pipelined lease on one
server, measured in ``docs/benchmarks.md``).

Markers are hints, never lost work: a watcher that takes a marker when no
wait is active (the wait timed out or was woken by another slot) pushes it
back at once, so a busy worker never keeps a marker meant for an idle one.
A watcher blocks only from the first wait after it went idle until its
``BLPOP`` returns, never in a loop while the worker is busy.

After a slot moves (resharding, failover) the watcher's ``BLPOP`` gets
``MOVED`` and reconnects to the node named in it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import MovedError

from scheduler.backend import topology
from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text
from scheduler.backend.scripts import LeaseReply, Scripts

__all__ = ["ClusterBlockingLease"]

log = logging.getLogger("scheduler.backend")


class _Watcher:
    """One slot's watcher thread (see the module docstring)."""

    def __init__(self, owner: ClusterBlockingLease, client: Any, keys: list[str]) -> None:
        self._owner = owner
        self._cluster = client
        self._keys = keys
        self._armed = threading.Event()
        self._conn: redis.Redis | None = None
        self._thread = threading.Thread(target=self._run, name="scheduler-slot-wait", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        self._armed.set()

    def close(self) -> None:
        self._armed.set()
        conn = self._conn
        if conn is not None:
            topology.close_quietly(conn)

    def _connect(self, moved: MovedError | None) -> redis.Redis:
        timeout = self._owner.max_block + 5.0
        if moved is None:
            return topology.node_client(self._cluster, self._keys[0], timeout)
        return topology.node_client_at(self._cluster, moved.host, moved.port, timeout)

    def _run(self) -> None:
        moved: MovedError | None = None
        while True:
            self._armed.wait()
            if self._owner.closed:
                return
            try:
                if self._conn is None:
                    self._conn = self._connect(moved)
                    moved = None
                popped: Any = self._conn.blpop(self._keys, timeout=self._owner.max_block)
            except MovedError as exc:
                moved = exc
                self._reset()
                continue
            except Exception as exc:
                if self._owner.closed:
                    return
                log.warning("wait on %s failed: %r; retrying in 1 s", self._keys[0], exc)
                self._reset()
                self._owner.closed_event.wait(1.0)
                continue
            if popped is None:
                if not self._owner.active:
                    self._armed.clear()
                continue
            if not self._owner.deliver(text(popped[0])):
                self._armed.clear()
                self._push_back(text(popped[0]))

    def _reset(self) -> None:
        if self._conn is not None:
            topology.close_quietly(self._conn)
        self._conn = None

    def _push_back(self, key: str) -> None:
        try:
            if self._conn is not None:
                self._conn.lpush(key, "1")
        except redis.RedisError as exc:  # a lost hint: the next lease pass finds the work
            log.warning("could not push back a wake marker to %s: %r", key, exc)


class ClusterBlockingLease:
    """The cluster form of :class:`scheduler.backend.waiting.BlockingLease`
    (same interface): one ``BLPOP`` watcher per slot, then a lease of the
    first queue.

    Args:
        client: a ``redis.cluster.RedisCluster``.
        scripts: the job scripts (the lease call).
        queues: the queues' keys; the lease is made in the first.
        max_block: longest single block, seconds.

    Attributes:
        max_block: the longest single block, seconds.
    """

    def __init__(
        self, client: Any, scripts: Scripts, queues: Sequence[QueueKeys], max_block: float
    ) -> None:
        if not queues:
            raise ValueError("a blocking lease needs at least one queue")
        self.max_block = max_block
        self._scripts = scripts
        self._queues = list(queues)
        self._queue_of = {qk.wake: qk.queue for qk in self._queues}
        self._lock = threading.Lock()
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.active = False
        self.closed_event = threading.Event()
        by_slot: dict[int, list[str]] = {}
        for qk in self._queues:
            by_slot.setdefault(client.keyslot(qk.wake), []).append(qk.wake)
        self._watchers = [_Watcher(self, client, keys) for keys in by_slot.values()]

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self.closed_event.is_set()

    @property
    def lease_queue(self) -> str:
        """Name of the queue the lease is made in (the first)."""
        return self._queues[0].queue

    def deliver(self, wake_key: str) -> bool:
        """Hand a taken marker to the active wait; False if none is active
        (the watcher then pushes it back)."""
        with self._lock:
            if self.active:
                self._events.put(wake_key)
                return True
        return False

    def wait_and_lease(
        self, n: int, worker_id: str, request_id: str, block: float
    ) -> tuple[LeaseReply, str | None]:
        """Block up to ``block`` seconds (at most :attr:`max_block`) until a
        wake marker of any queue arrives, then lease up to ``n`` jobs of
        :attr:`lease_queue` (see
        :meth:`scheduler.backend.waiting.BlockingLease.wait_and_lease`).

        Raises:
            redis.RedisError: the lease failed (ask again with the same
                ``request_id``), or the lease was closed.
        """
        if self.closed:
            raise redis.ConnectionError("blocking lease closed")
        with self._lock:
            self.active = True
        for watcher in self._watchers:
            watcher.arm()
        try:
            key: str | None = self._events.get(timeout=max(0.001, min(block, self.max_block)))
        except queue.Empty:
            key = None
        finally:
            with self._lock:
                self.active = False
                extra = []
                while not self._events.empty():
                    extra.append(self._events.get_nowait())
        for other in extra:  # taken by a second slot in the same instant
            self._scripts.client.lpush(other, "1")
        if self.closed:
            raise redis.ConnectionError("blocking lease closed")
        reply = self._scripts.lease(self._queues[0], n, worker_id, request_id)
        return reply, None if key is None else self._queue_of.get(key)

    def close(self) -> None:
        """Stop the watchers (idempotent; from any thread): their blocked
        ``BLPOP`` calls are cut by closing their connections."""
        self.closed_event.set()
        for watcher in self._watchers:
            watcher.close()
        with self._lock:
            self.active = True  # wake a wait in progress
            self._events.put("")
