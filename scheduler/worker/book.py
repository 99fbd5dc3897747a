"""The worker's book of jobs: what it holds leases on, and what it owes Redis.

Owned by the dispatcher thread; :meth:`JobBook.snapshot` is safe from other
threads (the heartbeater).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from scheduler.backend.record import (
    FIELD_COUNT,
    I_ATTEMPTS,
    I_TASK,
    I_TOKEN,
    SEP,
    JobOptions,
    record_damage,
    resource_of,
    split_leased,
)
from scheduler.priority import ready_score
from scheduler.serialization import encode_error
from scheduler.worker.execution import LeasedJob, Outcome

__all__ = ["JobBook", "LeaseEntry", "read_leased"]

log = logging.getLogger("scheduler.worker")

#: Options given to a job whose leased record is damaged (never run; only
#: reported as failed).
_DAMAGED_OPTIONS = JobOptions(max_attempts=1, lease_ms=60_000, result_ttl_ms=0, dead_ttl_ms=-1)


@functools.lru_cache(maxsize=256)
def _options(text: str) -> JobOptions:
    """Decoded job options (jobs of one task share one options text)."""
    return JobOptions.decode(text)


class LeaseEntry(NamedTuple):
    """A leased job read from its record, with what the book orders it by."""

    job: LeasedJob
    #: Ready score (priority and aging stamp), lower first.
    score: float
    #: The record's sequence (enqueue order among equal scores).
    seq: str
    #: Resource units the job takes (:mod:`~.capacity`).
    resource: float


def read_leased(queue: str, job_id: str, record: str) -> LeaseEntry:
    """Read a job just leased from ``queue`` (``record``: its new record
    text). Pure; safe from any thread.

    Raises:
        ValueError: the record is damaged (see :meth:`JobBook.add`).
    """
    # Hot path: split_leased (one split, one itemgetter) instead of
    # parse_record; the field order comes from record.LEASED_FIELDS.
    (
        token,
        task,
        payload,
        attempts,
        options,
        priority,
        enqueued_ms,
        aged,
        seq,
        inputs,
        meta,
        ready_ms,
    ) = split_leased(record)
    # Positional, in LeasedJob's field order (once per job: keywords cost a
    # dict per call).
    job = LeasedJob(
        queue,  # queue
        job_id,  # id
        token,  # token
        task,  # task
        payload,  # payload
        int(attempts),  # attempt
        _options(options),  # options
        float(priority),  # priority
        int(enqueued_ms),  # enqueued_ms
        0.0,  # started
        False,  # lost
        meta,  # meta
        int(ready_ms) if ready_ms else 0,  # ready_ms
    )
    score = ready_score(job.priority, float(aged) if aged else 0.0)
    return LeaseEntry(job, score, seq, resource_of(inputs))


class JobBook:
    """Leased jobs -- buffered (leased, not started) or running -- and finished
    jobs whose outcome is not reported yet.

    Buffered jobs start in the queue's own order, whenever they were leased:
    the worker's queue order first, then the ready score (priority and the
    record's aging stamp; :func:`scheduler.priority.ready_score`), then the
    sequence (enqueue order) -- so a high-priority job leased late still
    starts next (issue 9, item 9). The book holds a lease at most once: a
    lease it already holds (same job, same token) is not added again, and
    entries never compare :class:`LeasedJob` objects.

    Args:
        queues: the worker's queues, in its order (rank 0 first).
    """

    def __init__(self, queues: Sequence[str]) -> None:
        self._rank = {q: i for i, q in enumerate(queues)}
        self._leased: dict[tuple[str, str], LeasedJob] = {}
        self._buffer: list[tuple[int, float, str, int, LeasedJob]] = []
        self._ties = itertools.count()
        self._lock = threading.Lock()
        self.running = 0
        self._resources: dict[tuple[str, str], float] = {}
        self.pending: list[tuple[LeasedJob, Outcome]] = []
        self.starts: list[LeasedJob] = []
        self._first_start = 0.0  # monotonic time of the oldest start owed
        self._ahead: set[tuple[str, str, str]] = set()  # (queue, id, token)

    def __len__(self) -> int:
        """Number of jobs held (buffered, running, or finished and not reported)."""
        return len(self._leased)

    @property
    def active(self) -> int:
        """Jobs that take room: buffered + running (finished ones do not)."""
        return len(self._buffer) + self.running

    @property
    def held_resource(self) -> float:
        """Resource units taken by the buffered and running jobs
        (:mod:`~scheduler.worker.capacity`)."""
        return math.fsum(self._resources.values())

    @property
    def buffered(self) -> int:
        """Number of leased jobs not started yet."""
        return len(self._buffer)

    def holds(self, job: LeasedJob) -> bool:
        """True if ``job`` (this very lease) is still held."""
        return self._leased.get((job.queue, job.id)) is job

    def snapshot(self) -> list[LeasedJob]:
        """The held jobs now (a copy; thread-safe)."""
        with self._lock:
            return list(self._leased.values())

    def add(self, queue: str, job_id: str, record: str, *, ahead: bool = False) -> LeasedJob | None:
        """Hold a job just leased (``record``: its new record text) and buffer it.

        Returns the job, or None if this very lease (same job and token) is
        held already (a repeated lease reply) or was taken ahead of its reply
        (below). A newer lease of a held job replaces the old one, which is
        marked lost.

        ``ahead``: the lease is taken from a repeat of the waiter's request
        before the waiter's own reply arrived; that reply does not add it
        again, even once the job has finished and is no longer held (until
        :meth:`clear_ahead`).

        A record the worker cannot read (damaged: the scripts check every
        record before leasing it, so this means the two decoders disagree)
        is not run: the job is held and its failure -- not retryable, with a
        ``DamagedRecord`` error naming what was wrong -- is owed to Redis at
        once, so it goes dead with that reason (see :meth:`_damaged`). Never
        raises for a damaged record.
        """
        try:
            entry = read_leased(queue, job_id, record)
        except ValueError:
            return self._damaged(queue, job_id, record)
        job, score, seq, resource = entry
        if ahead:
            self._ahead.add((queue, job_id, job.token))
        elif self._ahead and (queue, job_id, job.token) in self._ahead:
            return None
        key = (queue, job_id)
        if key in self._leased:  # held already: the same lease, or an older one
            if self._hold(entry) is not None:
                return None
        else:  # the common case, once per job: _hold inline
            with self._lock:
                self._leased[key] = job
            self._resources[key] = resource
        heapq.heappush(self._buffer, (self._rank[queue], score, seq, next(self._ties), job))
        return job

    def add_started(self, entry: LeaseEntry) -> bool:
        """Hold a job just leased that already started outside the buffer
        (the waiter ran the best job of its lease itself, see
        :mod:`~.waiter`): it counts as running and its start is owed.

        Returns False if this very lease was held already -- taken ahead
        from a repeat of the waiter's request and buffered (:meth:`add`
        with ``ahead``) -- in which case the buffered copy is dropped and
        the started one held instead; True otherwise."""
        stale = self._hold(entry)
        if stale is not None:
            job = entry.job
            with self._lock:
                self._leased[(job.queue, job.id)] = job
            self._buffer = [item for item in self._buffer if item[-1] is not stale]
            heapq.heapify(self._buffer)
        self.running += 1
        if not self.starts:
            self._first_start = time.monotonic()
        self.starts.append(entry.job)
        return stale is None

    def _hold(self, entry: LeaseEntry) -> LeasedJob | None:
        """Hold ``entry``'s job (a newer lease of a held job marks the old
        one lost); returns the held job instead if this very lease (same
        token) is held already."""
        job = entry.job
        key = (job.queue, job.id)
        held = self._leased.get(key)
        if held is not None:
            if held.token == job.token:
                return held
            held.lost = True
        with self._lock:
            self._leased[key] = job
        self._resources[key] = entry.resource
        return None

    def clear_ahead(self) -> None:
        """The waiter's reply arrived: forget the leases taken ahead of it."""
        self._ahead.clear()

    def _damaged(self, queue: str, job_id: str, record: str) -> LeasedJob:
        """Hold a job whose leased record is damaged, owing its failure."""
        reason = record_damage(record) or "record unreadable by the worker"
        fields = record.split(SEP, FIELD_COUNT - 1)
        token = fields[I_TOKEN] if len(fields) == FIELD_COUNT else ""
        attempt = fields[I_ATTEMPTS] if len(fields) == FIELD_COUNT else ""
        job = LeasedJob(
            queue=queue,
            id=job_id,
            token=token,
            task=fields[I_TASK] if len(fields) == FIELD_COUNT else "",
            payload="",
            attempt=int(attempt) if attempt.isdigit() and attempt.isascii() else 0,
            options=_DAMAGED_OPTIONS,
            priority=0.0,
            enqueued_ms=0,
        )
        log.error("job %s in queue %s: damaged record (%s); not run", job_id, queue, reason)
        error = encode_error(f"damaged record: {reason}", "DamagedRecord", "", job.attempt)
        with self._lock:
            self._leased[(queue, job_id)] = job
        self.pending.append((job, Outcome(ok=False, text=error, error=reason, retryable=False)))
        return job

    def start_next(self, limit: int) -> list[LeasedJob]:
        """Take buffered jobs to run while fewer than ``limit`` run; counts them
        as running. A job whose lease was lost while buffered is dropped."""
        started = []
        buffer, leased = self._buffer, self._leased
        while buffer and self.running < limit:
            job = heapq.heappop(buffer)[-1]
            if job.lost or leased.get((job.queue, job.id)) is not job:  # not held
                self.drop(job)
                continue
            self.running += 1
            started.append(job)
        if started and not self.starts:
            self._first_start = time.monotonic()
        self.starts.extend(started)
        return started

    def reports_due(self, now: float, wait: float) -> bool:
        """True if reports must go to Redis now (``now``: monotonic seconds):
        outcomes are owed, or starts are owed and either no started job is
        still running or the oldest was owed ``wait`` seconds -- so the starts
        of a busy worker travel with the report of the next finished job (one
        round trip, one script call) instead of a round trip of their own."""
        if self.pending:
            return True
        return bool(self.starts) and (not self.running or now >= self._first_start + wait)

    def reports_due_at(self, wait: float) -> float | None:
        """When owed starts must go at the latest (monotonic s), or None."""
        return self._first_start + wait if self.starts else None

    def take_starts(self) -> list[LeasedJob]:
        """Started jobs whose start is not reported to Redis yet (still held);
        put back with :meth:`restore_starts` if sending fails."""
        leased = self._leased  # held: what holds() checks, inline (once per job)
        starts = [j for j in self.starts if leased.get((j.queue, j.id)) is j]
        self.starts = []
        return starts

    def restore_starts(self, jobs: list[LeasedJob]) -> None:
        """Owe again the start reports of ``jobs`` (due at once)."""
        if jobs:
            self._first_start = float("-inf")
        self.starts = jobs + self.starts

    def take_buffered(self) -> list[LeasedJob]:
        """Empty the buffer (jobs stay held until dropped); returns them."""
        jobs = [entry[-1] for entry in self._buffer if self.holds(entry[-1])]
        self._buffer.clear()
        return jobs

    def finished(self, job: LeasedJob, outcome: Outcome) -> None:
        """A running job finished: its outcome is owed to Redis."""
        self.running -= 1
        self._resources.pop((job.queue, job.id), None)
        self.pending.append((job, outcome))

    def take_pending(self) -> list[tuple[LeasedJob, Outcome]]:
        """The outcomes owed; put back with :meth:`restore_pending` if sending fails."""
        pending, self.pending = self.pending, []
        return pending

    def restore_pending(self, items: list[tuple[LeasedJob, Outcome]]) -> None:
        """Owe again the outcomes of ``items`` whose jobs are still held."""
        self.pending = [p for p in items if self.holds(p[0])] + self.pending

    def drop_all(self, jobs: Sequence[LeasedJob]) -> None:
        """:meth:`drop` each of ``jobs`` (one lock for all)."""
        leased, resources = self._leased, self._resources
        with self._lock:
            for job in jobs:
                key = (job.queue, job.id)
                if leased.get(key) is job:
                    del leased[key]
                    resources.pop(key, None)

    def drop(self, job: LeasedJob) -> None:
        """Stop holding ``job`` (reported, released or lost)."""
        with self._lock:
            if self._leased.get((job.queue, job.id)) is job:
                del self._leased[(job.queue, job.id)]
                self._resources.pop((job.queue, job.id), None)
