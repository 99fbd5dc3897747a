"""Blocking wait for new work, so idle workers do not poll.

The waiter thread waits through a
:class:`scheduler.backend.waiting.BlockingLease`: a ``BLPOP`` on the queues'
wake lists with the ``lease`` script call pipelined behind it on one
dedicated connection, so the lease runs the moment a marker arrives (or the
block times out) -- one round trip from "a job was enqueued" to "the worker
holds it" (see ``docs/design.md``, "Waiting without polling"). A lease after
a timeout is the periodic pass that promotes due delayed jobs and requeues
expired leases. This module is the policy around it: when to wait, for how
long, which request id to use, and handing the leased jobs (possibly none)
to the dispatcher's inbox as a :class:`~.messages.Leased` message.

The waiter blocks only when the dispatcher asks (it has room and found
nothing to lease), and only as long as the dispatcher says (until the
earliest due time of all its queues, :class:`~.pacing.Pacing`), so a busy
worker never swallows markers meant for idle ones. With several queues the
pipelined lease is for the first queue in the dispatcher's order; a marker
of another queue makes the dispatcher lease from it itself.

A failed wait is not re-sent as is (a second BLPOP would block again before
the lease behind it): the waiter asks the same lease request again without
blocking (:meth:`BlockingLease.recover`; the reply cache answers with
exactly the leases the failed call made), hands them over, and tells the
dispatcher to look at every queue (:class:`~.messages.Woken`), since a
marker the failed call took is lost.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading

from scheduler.backend.caller import retries_until
from scheduler.backend.scripts import LeaseFit
from scheduler.backend.waiting import BlockingLease
from scheduler.worker.messages import Leased, Message, Woken

__all__ = ["Waiter"]

log = logging.getLogger("scheduler.worker")


class Waiter:
    """Background ``BLPOP`` + ``lease`` on the worker's queues.

    Args:
        lease: the blocking lease on the worker's queues, in the
            dispatcher's order (its :attr:`~BlockingLease.max_block` bounds
            every wait); the waiter owns it and closes it.
        worker_id: the worker's id (leases are made in its name).
        inbox: the dispatcher's inbox.
    """

    def __init__(
        self,
        lease: BlockingLease,
        worker_id: str,
        inbox: queue.SimpleQueue[Message],
    ) -> None:
        self._lease = lease
        self._worker_id = worker_id
        self._inbox = inbox
        self._max_block = lease.max_block
        self._requests = itertools.count()
        self._open_request: str | None = None
        self._n = 0
        self._fit: LeaseFit | None = None
        self._block = self._max_block
        self._armed = threading.Event()
        self._closed = threading.Event()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="scheduler-waiter", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> bool:
        """True while a wait is requested or in progress."""
        return self._busy or self._armed.is_set()

    @property
    def open_lease(self) -> tuple[str, str] | None:
        """``(queue, request id)`` of the lease this waiter asked for whose
        reply is not in the dispatcher's inbox yet (None if there is none,
        or if it leases no jobs). The server may have run it already: the
        dispatcher repeats the request id without jobs (its reply cache
        answers) so that it holds those leases before it fills a slot.
        Read from the dispatcher's thread: it is cleared only after the
        reply is in the inbox."""
        request = self._open_request
        if request is None or self._n == 0:
            return None
        return self._lease.lease_queue, request

    def request(self, n: int, block: float | None = None, fit: LeaseFit | None = None) -> bool:
        """Ask for one blocking wait followed by a lease of up to ``n`` jobs
        within ``fit`` (the worker's capacity; None: unlimited). ``block``:
        longest wait, seconds (default and cap: the lease's ``max_block``).
        Returns True if armed, False (no-op) if a wait is already pending."""
        if self.waiting:
            return False
        self._n = n
        self._fit = fit
        self._block = self._max_block if block is None else min(block, self._max_block)
        self._armed.set()
        return True

    def close(self, timeout: float = 5.0) -> tuple[str, str] | None:
        """Stop the thread: its blocked call is cut off (the connection is
        closed, so Redis drops the BLPOP and never runs the lease behind it)
        and the thread is joined for up to ``timeout`` seconds.

        Returns ``(queue name, request id)`` of a lease whose reply may have
        been lost in the cut -- the caller re-asks the lease script with that
        request id (its reply cache answers) and releases what it got -- or
        None.
        """
        if self._closed.is_set():
            return None
        self._closed.set()
        self._armed.set()
        self._lease.close()
        self._thread.join(timeout)
        if self._open_request is None:
            return None
        return self._lease.lease_queue, self._open_request

    def _run(self) -> None:
        # A lease retrying through a failover gives up once close() is called.
        with retries_until(lambda: 0.0 if self._closed.is_set() else None):
            self._serve()

    def _serve(self) -> None:
        while True:
            self._armed.wait()
            if self._closed.is_set():
                return
            self._busy = True
            self._armed.clear()
            try:
                self._inbox.put(self._wait_and_lease())
                self._open_request = None  # after the put: see open_lease
            except Exception as exc:
                # Closing cuts the connection under us, whatever the call was
                # doing (redis-py may even fail with AttributeError then).
                if self._closed.is_set():
                    return
                log.warning("wait for new jobs failed: %r; looking again", exc)
                self._recover()
            finally:
                self._busy = False

    def _wait_and_lease(self) -> Leased:
        if self._open_request is None:
            self._open_request = f"{self._worker_id}:w{next(self._requests)}"
        reply, woken = self._lease.wait_and_lease(
            self._n, self._worker_id, self._open_request, self._block, self._fit
        )
        return Leased(self._lease.lease_queue, reply, self._n, woken)

    def _recover(self) -> None:
        """Ask the failed lease request again without blocking, retrying
        every second until it answers or the waiter is closed; then let the
        dispatcher look at every queue."""
        while self._open_request is not None and not self._closed.is_set():
            try:
                reply = self._lease.recover(self._n, self._worker_id, self._open_request, self._fit)
            except Exception as exc:
                if self._closed.is_set():
                    return
                log.warning("lease after a failed wait failed: %r; retrying in 1 s", exc)
                self._closed.wait(1.0)
                continue
            self._inbox.put(Leased(self._lease.lease_queue, reply, self._n, None))
            self._open_request = None
        self._inbox.put(Woken(None))
