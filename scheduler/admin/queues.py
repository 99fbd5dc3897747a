"""Per-queue status: counts, oldest ready job, paused, throughput, workers.

Everything is read through the storage layer's plain reads (no script,
nothing written; :meth:`scheduler.backend.Backend.queue_snapshots`), in one
pipelined round trip for all queues plus a bounded pass over the ready set
for the oldest ready job. Ages are measured against the Redis server's
clock, like the job records themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from scheduler.admin.common import readable_records
from scheduler.admin.workers import WorkerInfo, list_workers
from scheduler.backend import Backend
from scheduler.backend.record import JobState
from scheduler.timeutil import ms_to_datetime

__all__ = [
    "OLDEST_SCAN_LIMIT",
    "RATE_WINDOW_S",
    "TOTAL_NAMES",
    "Overview",
    "QueueStatus",
    "overview",
    "queue_status",
]

#: Ready sets up to this size are scanned completely for the oldest ready
#: job; larger ones are sampled (both ends of the run order) and the age is
#: marked approximate. Bounds the cost of ``status`` and ``top``.
OLDEST_SCAN_LIMIT = 1000

#: Window of the throughput figure, seconds.
RATE_WINDOW_S = 60

#: Cumulative counters kept in each queue's ``stats`` hash by the scripts.
TOTAL_NAMES = (
    "enqueued",
    "succeeded",
    "failed",
    "retried",
    "dead",
    "cancelled",
    "expired",
    "damaged",
)


@attrs.frozen
class QueueStatus:
    """A snapshot of one queue.

    Attributes:
        queue: queue name.
        ready: jobs waiting to run now.
        delayed: jobs waiting for their ETA (including failed jobs waiting
            for their retry ETA).
        leased: jobs in flight on workers.
        dead: dead-letter jobs kept (until their dead retention expires).
        done: succeeded and cancelled jobs kept (until their result TTL).
        paused: workers do not lease from the queue.
        aging: priority units a ready job gains per second of waiting.
        oldest_ready_age: seconds the oldest ready job has been ready
            (waiting since its ETA, enqueue or retry), None if none is ready.
        oldest_ready_exact: False when the ready set was too large to scan
            completely and the age comes from a sample.
        jobs_per_s: finished attempts (succeeded or failed) per second over
            the last minute.
        failure_rate: the failed share of those attempts (0..1), None when
            none finished in the last minute.
        workers: live workers leasing from this queue.
        totals: cumulative counters since the queue was created (enqueued,
            succeeded, failed, retried, dead, cancelled, expired = lease
            expiries, damaged = damaged records moved to dead and damaged
            queue sequences repaired; see ``docs/design.md``, "Damaged
            records").
    """

    queue: str
    ready: int
    delayed: int
    leased: int
    dead: int
    done: int
    paused: bool
    aging: float
    oldest_ready_age: float | None
    oldest_ready_exact: bool
    jobs_per_s: float
    workers: int
    totals: dict[str, int]
    failure_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (documented keys, see docs/operating.md)."""
        return {
            "queue": self.queue,
            "paused": self.paused,
            "aging": self.aging,
            "ready": self.ready,
            "delayed": self.delayed,
            "leased": self.leased,
            "dead": self.dead,
            "done": self.done,
            "oldest_ready_age_s": self.oldest_ready_age,
            "oldest_ready_exact": self.oldest_ready_exact,
            "jobs_per_s": self.jobs_per_s,
            "failure_rate": self.failure_rate,
            "workers": self.workers,
            "totals": dict(self.totals),
        }


@attrs.frozen
class Overview:
    """Status of many queues plus the live workers, at one server time.

    Attributes:
        server_time: the Redis server's clock when read (aware UTC).
        queues: one status per queue, sorted by name.
        workers: live workers (see :func:`scheduler.admin.list_workers`).
    """

    server_time: datetime
    queues: list[QueueStatus]
    workers: list[WorkerInfo]

    @property
    def running(self) -> int:
        """Jobs the live workers are running (started), at their last refresh."""
        return sum(w.running for w in self.workers)

    @property
    def buffered(self) -> int:
        """Jobs the live workers hold leased but not started (prefetched)."""
        return sum(w.buffered for w in self.workers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (documented keys, see docs/operating.md)."""
        return {
            "server_time": self.server_time.isoformat(),
            "workers": len(self.workers),
            "running": self.running,
            "buffered": self.buffered,
            "queues": [q.to_dict() for q in self.queues],
        }


def _window_total(stats: dict[str, str], now_ms: int, kind: str) -> int:
    """Sum of the per-second buckets ``<kind><second>`` (``r:`` finished,
    ``f:`` failed attempts; kept by ``bump_rate`` in ``lua/lib/signals.lua``)
    of the last :data:`RATE_WINDOW_S` seconds; damaged buckets are skipped."""
    now_s = now_ms // 1000
    total = 0
    for name, value in stats.items():
        if name.startswith(kind):
            try:
                sec, n = int(name[2:]), int(value)
            except ValueError:
                continue
            if now_s - RATE_WINDOW_S < sec <= now_s:
                total += n
    return total


def _rate(stats: dict[str, str], now_ms: int) -> float:
    """Finished attempts per second over the last :data:`RATE_WINDOW_S` seconds."""
    return _window_total(stats, now_ms, "r:") / RATE_WINDOW_S


def _failure_rate(stats: dict[str, str], now_ms: int) -> float | None:
    """Failed share of the attempts finished in the last :data:`RATE_WINDOW_S`
    seconds (0..1), None if none finished."""
    finished = _window_total(stats, now_ms, "r:")
    if finished <= 0:
        return None
    return min(1.0, _window_total(stats, now_ms, "f:") / finished)


def _totals(stats: dict[str, str]) -> dict[str, int]:
    result = dict.fromkeys(TOTAL_NAMES, 0)
    for name in TOTAL_NAMES:
        try:
            result[name] = int(stats.get(name, "0"))
        except ValueError:
            result[name] = 0
    return result


def _oldest_ready_ms(backend: Backend, queue: str, count: int) -> tuple[int | None, bool]:
    """Earliest ready time among ready jobs (ms), and whether the scan was complete.

    The ready set is ordered by priority, not age, so the records must be
    read. Up to :data:`OLDEST_SCAN_LIMIT` members are read; beyond that the
    first and last halves of the run order are sampled -- the tail holds the
    lowest priorities, where starvation shows first. Damaged records are
    skipped.
    """
    if count == 0:
        return None, True
    exact = count <= OLDEST_SCAN_LIMIT
    members: list[tuple[str, float]]
    if exact:
        members = backend.job_set_range(queue, "ready", 0, -1)
    else:
        half = OLDEST_SCAN_LIMIT // 2
        head = backend.job_set_range(queue, "ready", 0, half - 1)
        tail = backend.job_set_range(queue, "ready", -half, -1)
        members = [*head, *tail]
    ids = [job_id for job_id, _score in members]
    oldest: int | None = None
    for rec in readable_records(backend, queue, ids, chunk=200):
        if rec.state is not JobState.READY:
            continue
        ready_ms = rec.ready_ms
        oldest = ready_ms if oldest is None else min(oldest, ready_ms)
    return oldest, exact


def queue_status(
    backend: Backend,
    queues: Sequence[str] | None = None,
    *,
    workers: Sequence[WorkerInfo] | None = None,
    now_ms: int | None = None,
) -> list[QueueStatus]:
    """Status of ``queues`` (default: every registered queue), sorted by name.

    Args:
        backend: the storage layer.
        queues: queue names; unknown names report zeros.
        workers: the live workers, if already read (else read here).
        now_ms: server time in ms, if already read (else read here).

    Raises:
        InvalidNameError: a malformed queue name.
    """
    names = sorted(set(queues)) if queues is not None else backend.queue_names()
    for name in names:
        backend.queue(name)  # validate every name before reading anything
    if now_ms is None:
        now_ms = backend.server_time_ms()
    if workers is None:
        workers = list_workers(backend)
    result = []
    for snap in backend.queue_snapshots(names):
        ready = snap.sizes["ready"]
        oldest_ms, exact = _oldest_ready_ms(backend, snap.queue, ready)
        result.append(
            QueueStatus(
                queue=snap.queue,
                ready=ready,
                delayed=snap.sizes["delayed"],
                leased=snap.sizes["leased"],
                dead=snap.sizes["dead"],
                done=snap.sizes["done"],
                paused=snap.paused,
                aging=snap.aging,
                oldest_ready_age=(
                    None if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000)
                ),
                oldest_ready_exact=exact,
                jobs_per_s=_rate(snap.stats, now_ms),
                failure_rate=_failure_rate(snap.stats, now_ms),
                workers=sum(1 for w in workers if snap.queue in w.queues),
                totals=_totals(snap.stats),
            )
        )
    return result


def overview(backend: Backend, queues: Sequence[str] | None = None) -> Overview:
    """Status of ``queues`` (default: all registered) and the live workers."""
    now_ms = backend.server_time_ms()
    workers = list_workers(backend)
    statuses = queue_status(backend, queues, workers=workers, now_ms=now_ms)
    return Overview(server_time=ms_to_datetime(now_ms), queues=statuses, workers=workers)
