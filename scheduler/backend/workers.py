"""Writes of the worker registry (part of :class:`scheduler.backend.Backend`).

Each running worker publishes itself in two keys (cross-queue, written
outside scripts, see ``docs/design.md``, "Redis Cluster"):

* ``P:workers`` -- ZSET of worker ids scored by the time of their last
  publish, ms since the Unix epoch (the worker's clock: the registry is
  informational; leases use the server clock);
* ``P:worker:<id>`` -- HASH of the worker's details, expiring
  :data:`WORKER_TTL` seconds after its last publish, so a worker that dies
  vanishes on its own.

A crashed worker's ZSET entry is dropped by the live ones: each publish
also reads up to :data:`PRUNE_BATCH` entries last published more than
:data:`WORKER_TTL` s ago (by the publisher's clock) and removes those whose
details hash is gone -- bounded work per publish, one more round trip only
when there is something to check, and no reader or janitor needed (the
admin reads drop such entries too). A live worker whose clock lags keeps
its hash, so it is never removed; one that re-publishes between the check
and the removal is re-added by its next publish (5 s later).

The worker's heartbeat (:mod:`scheduler.worker.heartbeat`) decides when to
publish and what; this mixin only writes, on the script call path
(:meth:`scheduler.backend.scripts.Scripts.write`), so the writes are retried
through a failover like script calls (every one is safe to repeat).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scheduler.backend.keys import GlobalKeys
from scheduler.backend.replies import text
from scheduler.backend.scripts import Scripts

__all__ = ["PRUNE_BATCH", "WORKER_TTL", "WorkerPresence"]

#: Lifetime of a worker's registry hash after its last publish, seconds.
WORKER_TTL = 30

#: Registry entries checked (and dropped if dead) per publish, at most.
PRUNE_BATCH = 100


class WorkerPresence:
    """Worker registry writes (a worker publishing itself); mixed into
    :class:`scheduler.backend.Backend`."""

    keys: GlobalKeys
    scripts: Scripts

    def publish_worker(self, worker_id: str, fields: Mapping[str, str], at: float) -> None:
        """Write ``worker_id``'s registry entry in one round trip: set
        ``fields`` in its hash (which expires :data:`WORKER_TTL` s later) and
        score it ``at`` (seconds since the Unix epoch, stored as ms) in
        ``P:workers``; then drop up to :data:`PRUNE_BATCH` dead workers'
        entries (see the module docstring; a second round trip only if some
        entry is older than :data:`WORKER_TTL` s).

        Raises:
            redis.RedisError: the write failed.
        """
        key = self.keys.worker(worker_id)
        pairs = [part for item in fields.items() for part in item]
        cutoff_ms = (at - WORKER_TTL) * 1000
        replies = self.scripts.write(
            [
                ("HSET", key, *pairs),
                ("EXPIRE", key, WORKER_TTL),
                ("ZADD", self.keys.workers, repr(at * 1000), worker_id),
                (
                    "ZRANGEBYSCORE",
                    self.keys.workers,
                    "-inf",
                    f"({cutoff_ms!r}",
                    "LIMIT",
                    0,
                    PRUNE_BATCH,
                ),
            ]
        )
        old: Any = replies[-1]
        if old:
            self._prune_workers([text(member) for member in old])

    def _prune_workers(self, candidates: list[str]) -> None:
        """Remove from ``P:workers`` those of ``candidates`` whose details hash is gone."""
        alive = self.scripts.write([("EXISTS", self.keys.worker(w)) for w in candidates])
        gone = [w for w, n in zip(candidates, alive, strict=True) if not n]
        if gone:
            self.scripts.write([("ZREM", self.keys.workers, *gone)])

    def remove_worker(self, worker_id: str) -> None:
        """Remove ``worker_id`` from the registry (both keys; idempotent).

        Raises:
            redis.RedisError: the write failed.
        """
        self.scripts.write(
            [("ZREM", self.keys.workers, worker_id), ("DEL", self.keys.worker(worker_id))]
        )
