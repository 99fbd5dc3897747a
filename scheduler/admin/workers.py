"""The worker registry: which workers are alive, and what they are doing.

Workers publish themselves (:mod:`scheduler.worker.heartbeat`) in two keys:
``P:workers`` (ZSET of worker ids scored by the last publish, ms) and
``P:worker:<id>`` (HASH of details with a 30 s TTL, refreshed every 5 s).
A worker that dies stops refreshing its hash, which then expires; the ZSET
entry is dropped by the live workers when they publish
(:mod:`scheduler.backend.workers`, bounded work per publish) and also here,
on the read path, the first time the hash is found gone -- so dead workers
disappear on their own without a janitor process, whether or not anyone
lists workers.
"""

from __future__ import annotations

from typing import Any

import attrs

from scheduler.backend import Backend

__all__ = ["WorkerInfo", "list_workers"]


@attrs.frozen
class WorkerInfo:
    """One live worker, as published in the registry.

    Times are seconds since the Unix epoch, as written by the worker's own
    clock (the registry is informational; leases use the server clock).

    Attributes:
        id: worker id (``host:pid:random`` by default).
        host, pid: where it runs.
        queues: queues it leases from, in its order.
        concurrency: jobs it runs at once.
        pool: ``"thread"`` or ``"process"``.
        inflight: jobs it held at its last registry refresh (running plus
            buffered).
        running: of those, jobs started (a worker that does not publish
            it is assumed to run up to ``concurrency`` of them).
        processed: jobs it has reported since it started.
        last_beat: time of its last registry refresh, s.
        started: when it started, s (None if unknown).
    """

    id: str
    host: str
    pid: int | None
    queues: tuple[str, ...]
    concurrency: int | None
    pool: str
    inflight: int
    processed: int
    last_beat: float
    started: float | None
    running: int = 0

    @property
    def buffered(self) -> int:
        """Jobs leased ahead and waiting in its buffer (prefetched, not started)."""
        return max(0, self.inflight - self.running)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (documented keys, see docs/operating.md)."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "queues": list(self.queues),
            "concurrency": self.concurrency,
            "pool": self.pool,
            "inflight": self.inflight,
            "running": self.running,
            "buffered": self.buffered,
            "processed": self.processed,
            "last_beat": self.last_beat,
            "started": self.started,
        }


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def list_workers(
    backend: Backend, queue: str | None = None, *, prune: bool = True
) -> list[WorkerInfo]:
    """Return the live workers, most recently seen first.

    Args:
        backend: the storage layer (its registry of this prefix is read).
        queue: only workers serving this queue.
        prune: remove registry entries of workers whose details hash has
            expired (they are dead). Two round trips plus one when pruning.
    """
    result: list[WorkerInfo] = []
    gone: list[str] = []
    for entry in backend.worker_entries():
        fields = entry.details
        if not fields:
            gone.append(entry.id)
            continue
        queues = tuple(q for q in fields.get("queues", "").split(",") if q)
        if queue is not None and queue not in queues:
            continue
        inflight = _int(fields.get("inflight")) or 0
        concurrency = _int(fields.get("concurrency"))
        running = _int(fields.get("running"))
        if running is None:
            running = min(inflight, concurrency) if concurrency else inflight
        result.append(
            WorkerInfo(
                id=entry.id,
                host=fields.get("host", ""),
                pid=_int(fields.get("pid")),
                queues=queues,
                concurrency=concurrency,
                pool=fields.get("pool", ""),
                inflight=inflight,
                processed=_int(fields.get("processed")) or 0,
                last_beat=_float(fields.get("beat")) or entry.beat_ms / 1000,
                started=_float(fields.get("started")),
                running=min(running, inflight),
            )
        )
    if prune and gone:
        # A worker could re-publish between our read and this removal; it is
        # re-added by its next refresh (at most 5 s later), so nothing is lost.
        backend.forget_workers(gone)
    return result
