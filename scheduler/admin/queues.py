"""Per-queue status: counts, oldest ready job, paused, throughput, workers.

Everything is read with plain Redis reads (no script, nothing written), in
one pipelined round trip for all queues plus a bounded pass over the ready
set for the oldest ready job. Ages are measured against the Redis server's
clock, like the job records themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from scheduler.admin.common import chunks, server_now_ms, text
from scheduler.admin.workers import WorkerInfo, list_workers
from scheduler.backend.record import JobState, parse_record
from scheduler.priority import member_job_id
from scheduler.timeutil import ms_to_datetime

if TYPE_CHECKING:
    import redis

    from scheduler.app import Scheduler
    from scheduler.backend.keys import QueueKeys

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
TOTAL_NAMES = ("enqueued", "succeeded", "failed", "retried", "dead", "cancelled", "expired")


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
        workers: live workers leasing from this queue.
        totals: cumulative counters since the queue was created (enqueued,
            succeeded, failed, retried, dead, cancelled, expired = lease
            expiries).
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (documented keys, see docs/operating.md)."""
        return {
            "server_time": self.server_time.isoformat(),
            "workers": len(self.workers),
            "queues": [q.to_dict() for q in self.queues],
        }


def _rate(stats: dict[str, str], now_ms: int) -> float:
    """Finished attempts per second over the last :data:`RATE_WINDOW_S` seconds,
    from the per-second buckets ``r:<second>`` that ``bump_rate`` keeps."""
    now_s = now_ms // 1000
    total = 0
    for name, value in stats.items():
        if name.startswith("r:"):
            try:
                sec = int(name[2:])
            except ValueError:
                continue
            if now_s - RATE_WINDOW_S < sec <= now_s:
                total += int(value)
    return total / RATE_WINDOW_S


def _totals(stats: dict[str, str]) -> dict[str, int]:
    result = dict.fromkeys(TOTAL_NAMES, 0)
    for name in TOTAL_NAMES:
        try:
            result[name] = int(stats.get(name, "0"))
        except ValueError:
            result[name] = 0
    return result


def _oldest_ready_ms(client: redis.Redis, qk: QueueKeys, count: int) -> tuple[int | None, bool]:
    """Earliest ready time among ready jobs (ms), and whether the scan was complete.

    The ready set is ordered by priority, not age, so the records must be
    read. Up to :data:`OLDEST_SCAN_LIMIT` members are read; beyond that the
    first and last halves of the run order are sampled -- the tail holds the
    lowest priorities, where starvation shows first.
    """
    if count == 0:
        return None, True
    exact = count <= OLDEST_SCAN_LIMIT
    members: Any
    if exact:
        members = client.zrange(qk.ready, 0, -1)
    else:
        half = OLDEST_SCAN_LIMIT // 2
        head: Any = client.zrange(qk.ready, 0, half - 1)
        tail: Any = client.zrange(qk.ready, -half, -1)
        members = [*head, *tail]
    ids = [member_job_id(text(m)) for m in members]
    oldest: int | None = None
    for part in chunks(ids, 200):
        for job_id, raw in zip(part, client.hmget(qk.jobs, list(part)), strict=True):
            if raw is None:
                continue
            try:
                rec = parse_record(job_id, raw)
            except (ValueError, KeyError):  # unreadable record: skipped
                continue
            if rec.state is not JobState.READY:
                continue
            ready_ms = rec.ready_ms
            oldest = ready_ms if oldest is None else min(oldest, ready_ms)
    return oldest, exact


def queue_status(
    app: Scheduler,
    queues: Sequence[str] | None = None,
    *,
    workers: Sequence[WorkerInfo] | None = None,
    now_ms: int | None = None,
) -> list[QueueStatus]:
    """Status of ``queues`` (default: every registered queue), sorted by name.

    Args:
        app: the scheduler.
        queues: queue names; unknown names report zeros.
        workers: the live workers, if already read (else read here).
        now_ms: server time in ms, if already read (else read here).

    Raises:
        InvalidNameError: a malformed queue name.
    """
    names = sorted(set(queues)) if queues is not None else app.queue_names()
    keys = [app.queue_keys(q) for q in names]
    if now_ms is None:
        now_ms = server_now_ms(app.redis)
    if workers is None:
        workers = list_workers(app)
    pipe = app.redis.pipeline(transaction=False)
    for qk in keys:
        for key in (qk.ready, qk.delayed, qk.leased, qk.dead, qk.done):
            pipe.zcard(key)
        pipe.hmget(qk.meta, ["paused", "aging"])
        pipe.hgetall(qk.stats)
    replies = pipe.execute()
    result = []
    for i, qk in enumerate(keys):
        ready, delayed, leased, dead, done, meta, raw_stats = replies[i * 7 : i * 7 + 7]
        stats = {text(k): text(v) for k, v in raw_stats.items()}
        paused_raw, aging_raw = (text(v) if v is not None else None for v in meta)
        try:
            aging = float(aging_raw) if aging_raw else 0.0
        except ValueError:
            aging = 0.0
        oldest_ms, exact = _oldest_ready_ms(app.redis, qk, int(ready))
        result.append(
            QueueStatus(
                queue=qk.queue,
                ready=int(ready),
                delayed=int(delayed),
                leased=int(leased),
                dead=int(dead),
                done=int(done),
                paused=paused_raw == "1",
                aging=aging,
                oldest_ready_age=(
                    None if oldest_ms is None else max(0.0, (now_ms - oldest_ms) / 1000)
                ),
                oldest_ready_exact=exact,
                jobs_per_s=_rate(stats, now_ms),
                workers=sum(1 for w in workers if qk.queue in w.queues),
                totals=_totals(stats),
            )
        )
    return result


def overview(app: Scheduler, queues: Sequence[str] | None = None) -> Overview:
    """Status of ``queues`` (default: all registered) and the live workers."""
    now_ms = server_now_ms(app.redis)
    workers = list_workers(app)
    statuses = queue_status(app, queues, workers=workers, now_ms=now_ms)
    return Overview(server_time=ms_to_datetime(now_ms), queues=statuses, workers=workers)
