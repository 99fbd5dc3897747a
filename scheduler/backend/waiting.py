"""Waiting for new work without polling: wake markers and the blocking lease.

Idle workers block in ``BLPOP`` on the queues' wake lists (``P:{Q}:wake``,
markers pushed by enqueue, retry, release, resume and by a lease that left
work behind; see ``docs/design.md``, "Waiting without polling").

:class:`BlockingLease` is the connection-level half of that wait: it sends
the ``BLPOP`` and the ``lease`` script call **pipelined behind it** on one
dedicated connection. Redis runs a connection's commands in order, so the
lease runs the moment a marker arrives (or the block times out) and its
reply comes back with the BLPOP's -- one round trip from "a job was
enqueued" to "the worker holds it". :meth:`BlockingLease.close` (from any
thread) closes that connection: Redis drops the blocked ``BLPOP`` and never
runs the lease behind it. When to wait, for how long and what to do with
the reply is the worker's (:mod:`scheduler.worker.waiter`).

The connection's socket timeout exceeds the longest block (redis-py's
default 5 s would otherwise cut a long block), see
:func:`scheduler.backend.connection.blocking_client`.

fakeredis cannot cut a blocked call from another thread (its sockets are not
thread-safe), so on a fakeredis client the waits are made in short slices
(:data:`FAKE_SLICE`); :attr:`WakeSignals.cuts_blocked_calls` tells which.

Redis Cluster: one BLPOP spans all the given queues, which requires them to
be in one slot; on a cluster client a :class:`BlockingLease` hands its work
to a :class:`scheduler.backend.slot_waits.ClusterBlockingLease` (one wait
per slot, then the lease).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import redis
from redis.exceptions import NoScriptError

from scheduler.backend import topology
from scheduler.backend.caller import ScriptCaller
from scheduler.backend.connection import blocking_client
from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text
from scheduler.backend.scripts import LeaseFit, LeaseReply, Scripts
from scheduler.backend.slot_waits import ClusterBlockingLease

__all__ = ["FAKE_SLICE", "BlockingLease", "WakeSignals"]

#: Longest single block on a client that cannot cut a blocked call from
#: another thread (fakeredis), seconds.
FAKE_SLICE = 0.2


class BlockingLease:
    """``BLPOP`` on the wake lists of some queues with a ``lease`` of the first
    queue pipelined behind it, on a dedicated connection.

    Made by :meth:`WakeSignals.blocking_lease`. One thread calls
    :meth:`wait_and_lease`; any thread may call :meth:`close`.

    Args:
        client: the client whose server to use (its pool settings are copied).
        scripts: the job scripts (the lease call and its ``EVALSHA``).
        queues: the queues' keys; the lease is made in the first.
        max_block: longest single block, seconds.
        cuttable: False if ``client`` cannot cut a blocked call from another
            thread: blocks are then at most :data:`FAKE_SLICE` long.

    Attributes:
        max_block: the longest single block actually made, seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        scripts: Scripts,
        queues: Sequence[QueueKeys],
        max_block: float,
        *,
        cuttable: bool = True,
    ) -> None:
        if not queues:
            raise ValueError("a blocking lease needs at least one queue")
        self.max_block = max_block if cuttable else min(max_block, FAKE_SLICE)
        self._scripts = scripts
        self._queues = list(queues)
        self._queue_of = {qk.wake: qk.queue for qk in self._queues}
        self._wake_keys = list(self._queue_of)
        self._cluster: ClusterBlockingLease | None = None
        if topology.is_cluster(client):  # one wait per slot, see slot_waits
            self._cluster = ClusterBlockingLease(client, scripts, self._queues, max_block)
            return
        self._client = blocking_client(client, self.max_block)
        self._caller = ScriptCaller(self._client)

    @property
    def lease_queue(self) -> str:
        """Name of the queue the pipelined lease is made in (the first)."""
        return self._queues[0].queue

    def wait_and_lease(
        self, n: int, worker_id: str, request_id: str, block: float, fit: LeaseFit | None = None
    ) -> tuple[LeaseReply, str | None]:
        """Block up to ``block`` seconds (at most :attr:`max_block`) until a
        wake marker of any of the queues arrives, then lease up to ``n`` jobs
        of :attr:`lease_queue` for ``worker_id`` (within ``fit``, the
        worker's capacity; None: unlimited) -- in one round trip. The
        lease also runs after a timeout (it promotes due delayed jobs and
        requeues expired leases).

        Returns:
            ``(lease reply, name of the queue whose marker was taken)``; the
            name is None when the block timed out.

        Raises:
            redis.RedisError, OSError: the call failed, or was cut by
                :meth:`close` (redis-py may then also fail with another
                error, e.g. ``AttributeError``). It is not re-sent here (a
                repeated BLPOP would block again before the lease behind it
                and could swallow another marker): the lease may have run,
                so :meth:`recover` it with the same ``request_id``.
        """
        if self._cluster is not None:
            return self._cluster.wait_and_lease(n, worker_id, request_id, block)
        qk = self._queues[0]
        call = self._scripts.lease_call(qk, n, worker_id, request_id, fit)
        timeout = max(0.001, min(block, self.max_block))
        popped, raw = self._caller.call_many(
            [("BLPOP", *self._wake_keys, f"{timeout:.3f}"), self._scripts.command(call)],
            retry=False,
        )
        if isinstance(popped, Exception):
            raise popped
        if isinstance(raw, NoScriptError):  # e.g. after a restart: load it and ask again
            reply = self._scripts.lease(qk, n, worker_id, request_id, fit)
        elif isinstance(raw, Exception):
            raise raw
        else:
            reply = call.parse(raw)
        woken = None if popped is None else self._queue_of.get(text(popped[0]))
        return reply, woken

    def recover(
        self, n: int, worker_id: str, request_id: str, fit: LeaseFit | None = None
    ) -> LeaseReply:
        """After :meth:`wait_and_lease` failed: the same lease request, without
        the block -- the reply cache answers with exactly the leases the
        failed call made, or the lease runs now if it never ran.

        Raises:
            redis.RedisError, OSError: the server cannot be reached.
        """
        return self._scripts.lease(self._queues[0], n, worker_id, request_id, fit)

    def close(self) -> None:
        """Close the connection (idempotent; from any thread). A call blocked
        in :meth:`wait_and_lease` fails at once, and Redis drops it without
        running the lease behind it."""
        if self._cluster is not None:
            self._cluster.close()
            return
        self._caller.close()
        with contextlib.suppress(redis.RedisError):
            self._client.close()


class WakeSignals:
    """Wake markers and the blocking lease; mixed into
    :class:`scheduler.backend.Backend`."""

    client: redis.Redis
    scripts: Scripts

    def queue(self, name: str) -> QueueKeys:  # provided by Backend
        raise NotImplementedError

    @property
    def cuts_blocked_calls(self) -> bool:
        """True if a blocked call on this client can be cut from another
        thread by closing its connection (False on fakeredis, detected from
        the public ``connection_pool.connection_class``)."""
        if topology.is_cluster(self.client):
            return True
        module = self.client.connection_pool.connection_class.__module__
        return not module.startswith("fakeredis")

    def blocking_lease(self, queues: Sequence[str], max_block: float) -> BlockingLease:
        """A :class:`BlockingLease` on ``queues`` (the lease is made in the
        first) on a new dedicated connection; ``max_block`` in seconds.

        Raises:
            InvalidNameError: a malformed queue name.
            ValueError: no queues.
        """
        return BlockingLease(
            self.client,
            self.scripts,
            [self.queue(q) for q in queues],
            max_block,
            cuttable=self.cuts_blocked_calls,
        )

    def push_wake(self, queue: str) -> None:
        """Push a wake marker to ``queue``'s wake list, waking one idle worker.
        Sent on the script call path (:meth:`~scheduler.backend.scripts.Scripts.write`):
        retried through a failover; a repeat only pushes a second marker (one
        more idle worker recomputes its wait).

        Raises:
            redis.RedisError: the push failed.
        """
        self.scripts.write([("LPUSH", self.queue(queue).wake, "1")])
