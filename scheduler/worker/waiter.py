"""Blocking wait for new work, so idle workers do not poll.

The waiter thread blocks in ``BLPOP`` on the queues' wake lists (markers
pushed by enqueue, retry, release, resume and by a lease that left work
behind), on its own connection whose socket timeout exceeds the block time
(redis-py's default 5 s would otherwise break a long block).

The ``lease`` script call is **pipelined behind the BLPOP** on the same
connection: Redis runs a connection's commands in order, so the lease runs
the moment the marker arrives (or the block times out) and its reply comes
back with the BLPOP's -- one round trip from "a job was enqueued" to "the
worker holds it", instead of a wake-up followed by a second round trip. A
lease after a timeout is the periodic pass that promotes due delayed jobs
and requeues expired leases. The leased jobs (possibly none) go to the
dispatcher's inbox as ``("leased", (queue, LeaseReply, woken_key, n_asked))``.

The waiter blocks only when the dispatcher asks (it has room and found
nothing to lease), so a busy worker never swallows markers meant for idle
ones. With several queues the pipelined lease is for the first queue in the
dispatcher's order; a marker of another queue makes the dispatcher lease
from it itself.

Redis Cluster note: one BLPOP spans all the worker's queues, which requires
them to be on one node (always true on a single server).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import NoScriptError

from scheduler.backend.caller import ScriptCaller
from scheduler.backend.connection import blocking_client
from scheduler.backend.keys import QueueKeys

if TYPE_CHECKING:
    from scheduler.app import Scheduler

__all__ = ["Waiter"]

log = logging.getLogger("scheduler.worker")


class Waiter:
    """Background ``BLPOP`` + ``lease`` on the worker's queues.

    Args:
        app: the scheduler (its scripts and client settings are used).
        queues: the worker's queue keys, in the dispatcher's order.
        worker_id: the worker's id (leases are made in its name).
        inbox: the dispatcher's inbox.
        max_block: longest single block, seconds.
    """

    def __init__(
        self,
        app: Scheduler,
        queues: Sequence[QueueKeys],
        worker_id: str,
        inbox: queue.SimpleQueue[tuple[str, Any]],
        max_block: float = 30.0,
    ) -> None:
        self._app = app
        if app.redis.connection_pool.connection_class.__module__.startswith("fakeredis"):
            # fakeredis cannot cut a blocked call from another thread (its
            # sockets are not thread-safe), so block in short slices there.
            max_block = min(max_block, 0.2)
        self._client = blocking_client(app.redis, max_block)
        self._caller = ScriptCaller(self._client)
        self._queues = list(queues)
        self._wake_keys = [qk.wake for qk in self._queues]
        self._worker_id = worker_id
        self._inbox = inbox
        self._max_block = max_block
        self._requests = itertools.count()
        self._open_request: str | None = None
        self._n = 0
        self._block = max_block
        self._armed = threading.Event()
        self._closed = threading.Event()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="scheduler-waiter", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> bool:
        """True while a wait is requested or in progress."""
        return self._busy or self._armed.is_set()

    def request(self, n: int, block: float | None = None) -> None:
        """Ask for one blocking wait followed by a lease of up to ``n`` jobs
        (no-op if one is already pending). ``block``: longest wait, seconds
        (default and cap: ``max_block``)."""
        if not self.waiting:
            self._n = n
            self._block = self._max_block if block is None else min(block, self._max_block)
            self._armed.set()

    def close(self, timeout: float = 5.0) -> tuple[QueueKeys, str] | None:
        """Stop the thread: its blocked call is cut off (the connection is
        closed, so Redis drops the BLPOP and never runs the lease behind it)
        and the thread is joined for up to ``timeout`` seconds.

        Returns ``(queue keys, request id)`` of a lease whose reply may have
        been lost in the cut -- the caller re-asks the lease script with that
        request id (its reply cache answers) and releases what it got -- or
        None.
        """
        if self._closed.is_set():
            return None
        self._closed.set()
        self._armed.set()
        self._caller.close()
        with contextlib.suppress(redis.RedisError):
            self._client.close()
        self._thread.join(timeout)
        if self._open_request is None:
            return None
        return self._queues[0], self._open_request

    def _run(self) -> None:
        while True:
            self._armed.wait()
            if self._closed.is_set():
                return
            self._busy = True
            self._armed.clear()
            try:
                self._inbox.put(("leased", self._wait_and_lease()))
            except Exception as exc:
                # Closing cuts the connection under us, whatever the call was
                # doing (redis-py may even fail with AttributeError then).
                if self._closed.is_set():
                    return
                log.warning("wait for new jobs failed: %r; retrying in 1 s", exc)
                self._closed.wait(1.0)
                self._inbox.put(("wake", ""))  # let the dispatcher look for itself
            finally:
                self._busy = False

    def _wait_and_lease(self) -> tuple[str, Any, str | None, int]:
        scripts = self._app.scripts
        qk = self._queues[0]
        # A request id is reused after an error, so leases made by a call
        # whose reply was lost come back from the script's reply cache.
        if self._open_request is None:
            self._open_request = f"{self._worker_id}:w{next(self._requests)}"
        call = scripts.lease_call(qk, self._n, self._worker_id, self._open_request)
        timeout = max(0.001, self._block)
        popped, raw = self._caller.call_many(
            [("BLPOP", *self._wake_keys, f"{timeout:.3f}"), scripts.command(call)]
        )
        if isinstance(popped, Exception):
            raise popped
        if isinstance(raw, NoScriptError):
            reply = scripts.lease(qk, self._n, self._worker_id, self._open_request)
        elif isinstance(raw, Exception):
            raise raw
        else:
            reply = call.parse(raw)
        self._open_request = None
        key = None
        if popped is not None:
            raw_key = popped[0]
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        return qk.queue, reply, key, self._n
