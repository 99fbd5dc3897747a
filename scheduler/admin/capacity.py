"""Jobs no live worker can ever run: their ``resource`` exceeds the capacity of
every live worker serving their queue (``scheduler status`` marks them).

A worker with a capacity (``--capacity``) leaves a job bigger than its whole
capacity for another worker (``lua/lib/limits.lua``); when every live worker
of the queue declares a capacity smaller than the job, nobody ever takes it.
This read finds such jobs so they never wait unseen. It looks at the first
:data:`SCAN` ready jobs of each queue (bounded work); queues without live
workers, or with a live worker of unlimited capacity, report nothing.
"""

from __future__ import annotations

import attrs

from scheduler.backend import Backend
from scheduler.backend.record import parse_record
from scheduler.errors import DamagedRecordError

__all__ = ["SCAN", "OversizedJob", "oversized_jobs"]

#: Ready jobs looked at per queue.
SCAN = 1000


@attrs.frozen
class OversizedJob:
    """A ready job bigger than every live worker of its queue.

    Attributes:
        queue: queue name.
        job_id: the job.
        resource: its resource units.
        largest_capacity: the largest capacity among the queue's live workers.
    """

    queue: str
    job_id: str
    resource: float
    largest_capacity: float


def _capacity(text: str) -> float | None:
    """A worker's published capacity; None = unlimited (or unreadable)."""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def oversized_jobs(backend: Backend, queues: list[str]) -> list[OversizedJob]:
    """The ready jobs of ``queues`` (first :data:`SCAN` of each) that no live
    worker can take. Damaged records are skipped (reported elsewhere).

    Raises:
        redis.RedisError: Redis could not be read.
    """
    live = [e.details for e in backend.worker_entries() if e.details]
    out: list[OversizedJob] = []
    for queue in queues:
        caps = [
            _capacity(d.get("capacity", ""))
            for d in live
            if queue in d.get("queues", "").split(",")
        ]
        if not caps or any(c is None for c in caps):
            continue
        largest = max(c for c in caps if c is not None)
        ids = [job_id for job_id, _ in backend.job_set_range(queue, "ready", 0, SCAN - 1)]
        for job_id, raw in zip(ids, backend.raw_records(queue, ids), strict=True):
            if raw is None:
                continue
            try:
                rec = parse_record(job_id, raw)
            except DamagedRecordError:
                continue
            resource = rec.inputs[2] if rec.inputs else 1.0
            if resource > largest:
                out.append(OversizedJob(queue, job_id, resource, largest))
    return out
