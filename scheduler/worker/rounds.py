"""The worker's round trips: what it owes Redis and the leases it asks for.

One round sends, per queue, **one pipelined round trip**: the starts of the
jobs begun since the last round (first, so a job's start is recorded before
its outcome: carried by the ``complete`` call when there is one, else a
``start`` call of their own), the successes (``complete``) and failures
(``fail``) reported since, and a ``lease`` for the worker's free room (or a
maintenance-only lease when the queue is due: promotion, reaping, next wake
time). Every lease reply goes back to the dispatcher's one taker
(``Worker._take_reply``). Releases (shutdown) go through here too.

Owned by the dispatcher thread; what it needs of the worker is passed in
(like :class:`~.heartbeat.Heartbeater`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from scheduler.backend.codes import CompleteCode, FailCode, ReleaseCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.scripts import LeaseFit, LeaseReply, ScriptCall, Scripts
from scheduler.worker.book import JobBook
from scheduler.worker.execution import LeasedJob, Outcome
from scheduler.worker.observer import WorkerObserver, notify

__all__ = ["RoundTrips"]

log = logging.getLogger("scheduler.worker")


class RoundTrips:
    """Sends the worker's reports and lease calls.

    Args:
        scripts: the job scripts.
        keys_for: queue name -> its keys.
        book: the worker's book (reports owed are taken from it).
        worker_id: the worker's id (leases are made in its name).
        order: the queues in this round's order.
        retry_delay_ms: delay of a failed job's retry, ms (-1: no retry).
        finish: called with the reported jobs and outcomes of one call and
            its reply codes (one per job, in order).
        take_reply: called with each lease reply ``(queue, reply, n asked)``.
        observer: the worker's observer (or None), read at each call.
        fit: the worker's capacity for a lease call now (None: unlimited),
            asked before each queue's lease (earlier queues' leases count).
        take_ahead: called with the reply of a repeat of the waiter's open
            lease request ``(queue, reply)`` (see :meth:`run`).
    """

    def __init__(
        self,
        scripts: Scripts,
        keys_for: Callable[[str], QueueKeys],
        book: JobBook,
        worker_id: str,
        order: Callable[[], Sequence[str]],
        retry_delay_ms: Callable[[LeasedJob, Outcome], int],
        finish: Callable[
            [Sequence[tuple[LeasedJob, Outcome]], Sequence[CompleteCode | FailCode]], None
        ],
        take_reply: Callable[[str, LeaseReply, int], None],
        observer: Callable[[], WorkerObserver | None],
        fit: Callable[[], LeaseFit | None] = lambda: None,
        take_ahead: Callable[[str, LeaseReply], None] = lambda q, reply: None,
    ) -> None:
        self._scripts = scripts
        self._keys_for = keys_for
        self._book = book
        self._worker_id = worker_id
        self._order = order
        self._retry_delay_ms = retry_delay_ms
        self._finish = finish
        self._take_reply = take_reply
        self._observer = observer
        self._fit = fit
        self._take_ahead = take_ahead
        self._requests = itertools.count()
        self._open_requests: dict[str, str] = {}  # queue -> lease request id to retry

    def run(self, want: int, due: Sequence[str], ahead: tuple[str, str] | None = None) -> None:
        """Report the starts and outcomes owed, lease up to ``want`` jobs (from
        the queues in order until it is met) and make a lease call in every
        queue of ``due``.

        ``ahead``: ``(queue, request id)`` of the waiter's lease whose reply
        has not arrived; it is repeated without jobs, last in that queue's
        round trip: if the server ran it, its reply cache answers with its
        leases (to ``take_ahead``), so the worker holds every job leased to
        it before this round trip ended; if not, nothing is leased or cached
        under that request id (the waiter's call still leases).

        Raises:
            redis.RedisError, OSError: a round trip failed; what it did not
                report is owed again (every repeat is idempotent; a lease is
                repeated with the same request id).
        """
        pending = self._book.take_pending()
        starts = self._book.take_starts()
        by_queue: dict[str, list[tuple[LeasedJob, Outcome]]] = {}
        for job, outcome in pending:
            by_queue.setdefault(job.queue, []).append((job, outcome))
        starts_of: dict[str, list[LeasedJob]] = {}
        for job in starts:
            starts_of.setdefault(job.queue, []).append(job)
        got = 0
        try:
            for q in self._order():
                items, began = by_queue.get(q, []), starts_of.get(q, [])
                lease_n = max(0, want - got)
                repeat = ahead[1] if ahead is not None and ahead[0] == q else None
                if items or began or lease_n > 0 or q in due or repeat:
                    got += self._queue_round_trip(q, items, began, lease_n, q in due, repeat)
        except BaseException:
            # Reports not applied yet (their jobs are still held) go again next
            # round; repeats are idempotent (a repeated start too).
            self._book.restore_pending(pending)
            self._book.restore_starts(starts)
            raise

    def _queue_round_trip(
        self,
        q: str,
        items: list[tuple[LeasedJob, Outcome]],
        starts: list[LeasedJob],
        lease_n: int,
        maintain: bool,
        repeat: str | None = None,
    ) -> int:
        """One queue's pipelined calls; returns the number of jobs leased."""
        scripts, qk = self._scripts, self._keys_for(q)
        ok = [(j, o) for j, o in items if o.ok]
        bad = [(j, o) for j, o in items if not o.ok]
        calls: list[ScriptCall[Any]] = []
        leases = [(j.id, j.token) for j in starts]
        # Starts first, so a job's start is recorded before its outcome:
        # inside the complete call when there is one (one call fewer per
        # round trip), else as a start call of their own.
        own_start = bool(leases) and not ok
        if own_start:
            calls.append(scripts.start_call(qk, leases))
        if ok:
            calls.append(
                scripts.complete_call(qk, [(j.id, j.token, o.text) for j, o in ok], leases)
            )
        if bad:
            calls.append(
                scripts.fail_call(
                    qk, [(j.id, j.token, o.text, self._retry_delay_ms(j, o)) for j, o in bad]
                )
            )
        lease = lease_n > 0 or maintain
        if lease:
            request = self._open_requests.setdefault(q, f"{self._worker_id}:{next(self._requests)}")
            calls.append(scripts.lease_call(qk, lease_n, self._worker_id, request, self._fit()))
        if repeat is not None:
            calls.append(scripts.lease_call(qk, 0, self._worker_id, repeat))
        replies = scripts.run_many(calls)
        if own_start:
            replies.pop(0)  # a lost lease (STALE) is found by the heartbeat too
        for group in (ok, bad):
            if group:
                self._finish(group, replies.pop(0))
        got = 0
        if lease:
            del self._open_requests[q]
            before = self._book.active
            self._take_reply(q, replies.pop(0), lease_n)
            got = self._book.active - before
        if repeat is not None:
            self._take_ahead(q, replies.pop(0))
        return got

    def release(self, jobs: list[LeasedJob]) -> None:
        """Give leased jobs back to their queues without losing an attempt.

        Raises:
            redis.RedisError, OSError: the release failed.
        """
        by_queue: dict[str, list[LeasedJob]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        for q, items in by_queue.items():
            codes = self._scripts.release(self._keys_for(q), [(j.id, j.token) for j in items])
            for job, code in zip(items, codes, strict=True):
                self._book.drop(job)
                back = code in (ReleaseCode.RELEASED, ReleaseCode.ALREADY_RELEASED)
                notify(self._observer(), "on_released" if back else "on_lease_lost", job)
                log.info(
                    "job %s task=%s queue=%s attempt=%d released (%s)",
                    job.id,
                    job.task,
                    q,
                    job.attempt,
                    "back to ready" if back else "lease already lost",
                )
