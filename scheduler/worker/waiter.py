"""Blocking wait for new work, so idle workers do not poll.

The waiter waits through a :class:`scheduler.backend.waiting.BlockingLease`:
a ``BLPOP`` on the queues' wake lists with the ``lease`` script call
pipelined behind it on one dedicated connection, so the lease runs the
moment a marker arrives (or the block times out) -- one round trip from "a
job was enqueued" to "the worker holds it" (see ``docs/design.md``, "Waiting
without polling"). A lease after a timeout is the periodic pass that
promotes due delayed jobs and requeues expired leases. This module is the
policy around it: when to wait, for how long, which request id to use, and
handing the leased jobs (possibly none) to the dispatcher's inbox as a
:class:`~.messages.Leased` message.

The waiter blocks only when the dispatcher asks (it has room and found
nothing to lease), and only as long as the dispatcher says (until the
earliest due time of all its queues, :class:`~.pacing.Pacing`), so a busy
worker never swallows markers meant for idle ones. With several queues the
pipelined lease is for the first queue in the dispatcher's order; a marker
of another queue makes the dispatcher lease from it itself.

**Starting the first job** (issue 16, latency). Handing a leased job from
the waiter's thread to the dispatcher and from there to a pool thread costs
two thread wake-ups (0.1-0.3 ms each on a small VM). So when the dispatcher
*allows* it (:meth:`Waiter.request` with ``direct=True``: the thread pool,
no capacity, a free slot, nothing buffered), the thread whose wait brought
jobs runs the best of them -- the reply's first -- itself
(``run_here``, :meth:`.pool.ThreadRunner.run_here`), after putting the
:class:`~.messages.Leased` message (naming that job as started) into the
inbox; the dispatcher books it as running and owes its start, exactly as if
it had started it. The other jobs of the reply are buffered as usual.

The permission is good for one job and is taken back
(:meth:`Waiter.revoke`) before the dispatcher buffers any job (a lease reply
with jobs), so a job is never started here while a buffered one waits
(exact start order; the reply is best first). Taking the permission and
putting the message are one locked step, so once :meth:`~Waiter.took`
says a job was started, its message is in the inbox:
the dispatcher books it before it starts anything, so the concurrency
holds (a lease it made meanwhile may fill the prefetch buffer one over, for
a moment). A new permission is not given while a start is unacknowledged.
While a thread runs such a job, another one waits (the waiter starts
threads as needed: at most one more than the jobs they run, so at most
``concurrency + 1``).

A failed wait is not re-sent as is (a second BLPOP would block again before
the lease behind it): the waiter asks the same lease request again without
blocking (:meth:`BlockingLease.recover`; the reply cache answers with
exactly the leases the failed call made), hands them over, and tells the
dispatcher to look at every queue (:class:`~.messages.Woken`), since a
marker the failed call took is lost.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

from scheduler.backend.caller import retries_until
from scheduler.backend.scripts import LeaseFit, LeaseReply
from scheduler.backend.waiting import BlockingLease
from scheduler.worker.book import LeaseEntry, read_leased
from scheduler.worker.execution import LeasedJob
from scheduler.worker.messages import Leased, Message, Woken

__all__ = ["Waiter"]

log = logging.getLogger("scheduler.worker")

#: A wait asked by the dispatcher: (n, block seconds, fit).
_Request = tuple[int, float, LeaseFit | None]


class Waiter:
    """Background ``BLPOP`` + ``lease`` on the worker's queues.

    Args:
        lease: the blocking lease on the worker's queues, in the
            dispatcher's order (its :attr:`~BlockingLease.max_block` bounds
            every wait); the waiter owns it and closes it.
        worker_id: the worker's id (leases are made in its name).
        inbox: the dispatcher's inbox.
        run_here: runs a job on the calling thread and reports it
            (:meth:`.pool.ThreadRunner.run_here`); None (a process pool):
            the waiter never starts jobs itself.
    """

    def __init__(
        self,
        lease: BlockingLease,
        worker_id: str,
        inbox: queue.SimpleQueue[Message],
        run_here: Callable[[LeasedJob], None] | None = None,
    ) -> None:
        self._lease = lease
        self._worker_id = worker_id
        self._inbox = inbox
        self._run_here = run_here
        self._max_block = lease.max_block
        self._requests = itertools.count()
        self._open_request: str | None = None
        self._n = 0  # jobs asked by the current wait
        self._asked: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = False  # a wait is asked or in progress (at most one)
        self._direct = False  # the next reply's first job may be started here
        self._claimed = False  # a job was started here since the last took()
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._free = 0  # threads not running a job
        self._current: threading.Thread | None = None  # the one in a wait
        self._names = itertools.count()
        self._add_thread()

    @property
    def waiting(self) -> bool:
        """True while a wait is requested or in progress."""
        return self._pending

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

    def request(
        self, n: int, block: float | None = None, fit: LeaseFit | None = None, direct: bool = False
    ) -> bool:
        """Ask for one blocking wait followed by a lease of up to ``n`` jobs
        within ``fit`` (the worker's capacity; None: unlimited). ``block``:
        longest wait, seconds (default and cap: the lease's ``max_block``).
        ``direct``: the first job of the reply may be started by the waiter
        (the dispatcher has a free slot and nothing buffered, and will call
        :meth:`revoke` before it buffers jobs). Returns True if armed, False
        (no-op) if a wait is already pending. Dispatcher only."""
        with self._lock:
            if self._pending or self._closed.is_set():
                return False
            # Given only with a new wait: one already sent may have leased in
            # the server before the dispatcher's view changed (a round trip
            # may have taken its jobs ahead). Not while a job the waiter
            # started is unacknowledged (took): the counts do not include it.
            self._direct = direct and self._run_here is not None and not self._claimed
            self._pending = True
            if not self._free:  # every thread runs a job: one more to wait
                self._add_thread()
        self._asked.put((n, self._max_block if block is None else min(block, self._max_block), fit))
        return True

    def revoke(self) -> None:
        """Take back the permission to start a job (see :meth:`request`).
        A job started before is still reported by :meth:`took`."""
        with self._lock:
            self._direct = False

    def took(self) -> bool:
        """True if the waiter started a job since the last call: its
        :class:`~.messages.Leased` message is in the inbox (or was taken)."""
        with self._lock:
            claimed, self._claimed = self._claimed, False
        return claimed

    def close(self, timeout: float = 5.0) -> tuple[str, str] | None:
        """Stop the threads: a blocked call is cut off (the connection is
        closed, so Redis drops the BLPOP and never runs the lease behind it)
        and the thread in it is joined for up to ``timeout`` seconds (threads
        running a job end after it, unjoined).

        Returns ``(queue name, request id)`` of a lease whose reply may have
        been lost in the cut -- the caller re-asks the lease script with that
        request id (its reply cache answers) and releases what it got -- or
        None.
        """
        with self._lock:
            if self._closed.is_set():
                return None
            self._closed.set()
            self._direct = False
            current, count = self._current, len(self._threads)
        for _ in range(count):
            self._asked.put(None)
        self._lease.close()
        if current is not None:
            current.join(timeout)
        if self._open_request is None:
            return None
        return self._lease.lease_queue, self._open_request

    def _add_thread(self) -> None:
        """Start one more waiting thread (lock held)."""
        thread = threading.Thread(
            target=self._run, name=f"scheduler-waiter-{next(self._names)}", daemon=True
        )
        self._threads.append(thread)
        self._free += 1
        thread.start()

    def _run(self) -> None:
        while (asked := self._asked.get()) is not None:
            me = threading.current_thread()
            with self._lock:
                if self._closed.is_set():
                    return
                self._current = me
            job: LeasedJob | None = None
            # A lease retrying through a failover gives up once close() is
            # called (not around run_here: a task's own calls are not bounded).
            try:
                with self._until_closed():
                    job = self._wait_and_hand_over(*asked)
            except Exception as exc:
                # Closing cuts the connection under us, whatever the call was
                # doing (redis-py may even fail with AttributeError then).
                if self._closed.is_set():
                    return
                log.warning("wait for new jobs failed: %r; looking again", exc)
                with self._until_closed():
                    self._recover(*asked)
                with self._lock:
                    self._pending = False
            finally:
                with self._lock:
                    if self._current is me:
                        self._current = None
            if job is not None and self._run_here is not None:
                self._run_here(job)
                with self._lock:
                    self._free += 1
                if self._closed.is_set():
                    return

    def _until_closed(self) -> contextlib.AbstractContextManager[None]:
        """This thread's topology retries give up once the waiter is closed."""
        return retries_until(lambda: 0.0 if self._closed.is_set() else None)

    def _wait_and_hand_over(self, n: int, block: float, fit: LeaseFit | None) -> LeasedJob | None:
        """Wait and lease; put the :class:`~.messages.Leased` message. Returns
        the job to run on this thread (its message says it started) or None."""
        self._n = n
        if self._open_request is None:
            self._open_request = f"{self._worker_id}:w{next(self._requests)}"
        reply, woken = self._lease.wait_and_lease(
            n, self._worker_id, self._open_request, block, fit
        )
        q = self._lease.lease_queue
        entry = self._first(q, reply) if self._direct and reply.jobs else None
        # One locked step: the wait is over (the dispatcher may ask the next
        # one as soon as it has the message), the job is taken (or not) and
        # the message is in the inbox before took() can say so.
        # The request stays open until its reply is in the inbox (open_lease).
        with self._lock:
            self._pending = False
            if entry is None or not self._direct or self._closed.is_set():
                self._inbox.put(Leased(q, reply, n, woken))
                self._open_request = None
                return None
            self._direct = False
            self._claimed = True
            self._free -= 1
            entry.job.started = time.monotonic()
            self._inbox.put(Leased(q, reply, n, woken, entry))
            self._open_request = None
        return entry.job

    @staticmethod
    def _first(q: str, reply: LeaseReply) -> LeaseEntry | None:
        """The reply's first (best) job, read; None if its record is damaged
        (the dispatcher reports that)."""
        job_id, text = reply.jobs[0]
        try:
            return read_leased(q, job_id, text)
        except ValueError:
            return None

    def _recover(self, n: int, block: float, fit: LeaseFit | None) -> None:
        """Ask the failed lease request again without blocking, retrying
        every second until it answers or the waiter is closed; then let the
        dispatcher look at every queue."""
        del block
        while self._open_request is not None and not self._closed.is_set():
            try:
                reply = self._lease.recover(n, self._worker_id, self._open_request, fit)
            except Exception as exc:
                if self._closed.is_set():
                    return
                log.warning("lease after a failed wait failed: %r; retrying in 1 s", exc)
                self._closed.wait(1.0)
                continue
            self._inbox.put(Leased(self._lease.lease_queue, reply, n, None))
            self._open_request = None  # after the put: see open_lease
        self._inbox.put(Woken(None))
