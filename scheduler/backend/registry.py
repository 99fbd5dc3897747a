"""Reads of the worker registry (part of :class:`Backend`).

Workers publish themselves (:mod:`scheduler.worker.heartbeat`) in two keys
(see :mod:`scheduler.backend.keys`): ``P:workers`` (ZSET of worker ids
scored by the last publish, ms since the Unix epoch, worker clock) and
``P:worker:<id>`` (HASH of details with a TTL). A worker that dies stops
refreshing its hash, which then expires; its ZSET entry is dropped by the
next publish of any live worker (:mod:`scheduler.backend.workers`) or by a
reader, with :meth:`WorkerRegistry.forget_workers`.
"""

from __future__ import annotations

from typing import Any

import attrs
import redis

from scheduler.backend.keys import GlobalKeys
from scheduler.backend.replies import text

__all__ = ["RegistryEntry", "WorkerRegistry"]


@attrs.frozen
class RegistryEntry:
    """One worker id in the registry.

    Attributes:
        id: worker id.
        beat_ms: its last publish, ms since the Unix epoch (worker clock).
        details: its details hash, decoded (``host``, ``pid``, ``queues``,
            ``concurrency``, ``pool``, ``inflight``, ``processed``, ``beat``,
            ``started``); empty when the hash has expired (the worker is dead).
    """

    id: str
    beat_ms: float
    details: dict[str, str]


class WorkerRegistry:
    """Worker registry reads; mixed into :class:`scheduler.backend.Backend`."""

    client: redis.Redis
    keys: GlobalKeys

    def worker_entries(self) -> list[RegistryEntry]:
        """Every worker in the registry, most recently published first, with
        its details (two round trips).

        Raises:
            redis.RedisError: Redis could not be read.
        """
        entries: Any = self.client.zrange(self.keys.workers, 0, -1, desc=True, withscores=True)
        if not entries:
            return []
        ids = [text(member) for member, _score in entries]
        pipe = self.client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(self.keys.worker(worker_id))
        details = pipe.execute()
        return [
            RegistryEntry(worker_id, float(score), {text(k): text(v) for k, v in raw.items()})
            for worker_id, (_member, score), raw in zip(ids, entries, details, strict=True)
        ]

    def forget_workers(self, worker_ids: list[str]) -> None:
        """Drop ``worker_ids`` from the registry set (their details hashes
        are left to expire). A worker that is in fact alive is re-added by
        its next refresh."""
        if worker_ids:
            self.client.zrem(self.keys.workers, *worker_ids)
