"""Writes of the worker registry (part of :class:`scheduler.backend.Backend`).

Each running worker publishes itself in two keys (cross-queue, written
outside scripts, see ``docs/design.md``, "Redis Cluster"):

* ``P:workers`` -- ZSET of worker ids scored by the time of their last
  publish, ms since the Unix epoch (the worker's clock: the registry is
  informational; leases use the server clock);
* ``P:worker:<id>`` -- HASH of the worker's details, expiring
  :data:`WORKER_TTL` seconds after its last publish, so a worker that dies
  vanishes on its own (the admin reads drop its ZSET entry).

The worker's heartbeat (:mod:`scheduler.worker.heartbeat`) decides when to
publish and what; this mixin only writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from scheduler.backend.keys import GlobalKeys

__all__ = ["WORKER_TTL", "WorkerPresence"]

#: Lifetime of a worker's registry hash after its last publish, seconds.
WORKER_TTL = 30


class WorkerPresence:
    """Worker registry writes (a worker publishing itself); mixed into
    :class:`scheduler.backend.Backend`."""

    client: redis.Redis
    keys: GlobalKeys

    def publish_worker(self, worker_id: str, fields: Mapping[str, str], at: float) -> None:
        """Write ``worker_id``'s registry entry in one round trip: set
        ``fields`` in its hash (which expires :data:`WORKER_TTL` s later) and
        score it ``at`` (seconds since the Unix epoch, stored as ms) in
        ``P:workers``.

        Raises:
            redis.RedisError: the write failed.
        """
        key = self.keys.worker(worker_id)
        mapping: dict[Any, Any] = dict(fields)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, WORKER_TTL)
        pipe.zadd(self.keys.workers, {worker_id: at * 1000})
        pipe.execute()

    def remove_worker(self, worker_id: str) -> None:
        """Remove ``worker_id`` from the registry (both keys; idempotent).

        Raises:
            redis.RedisError: the write failed.
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self.keys.workers, worker_id)
        pipe.delete(self.keys.worker(worker_id))
        pipe.execute()
