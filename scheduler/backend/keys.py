"""Every Redis key and channel name the scheduler uses, in one place.

Layout (``P`` is the configurable prefix, default ``"sched"``; ``Q`` a queue name):

Per queue -- all share the hash tag ``{Q}`` so a queue lives in one Redis
Cluster slot and every Lua script touches a single slot:

=====================  =========  ==============================================
key                    type       contents
=====================  =========  ==============================================
``P:{Q}:jobs``         HASH       job id -> job record (see :mod:`scheduler.backend.record`)
``P:{Q}:ready``        ZSET       ``<seq>:<id>`` scored by ready score (lower first)
``P:{Q}:delayed``      ZSET       ``<seq>:<id>`` scored by ETA (ms since epoch)
``P:{Q}:leased``       ZSET       job id scored by lease deadline (ms)
``P:{Q}:dead``         ZSET       job id scored by expiry time of the dead record (ms)
``P:{Q}:done``         ZSET       job id scored by expiry time of the finished record
``P:{Q}:meta``         HASH       ``seq``, ``paused``, ``aging``, ``aging_since``, ``aging_at``
``P:{Q}:wake``         LIST       wake-up markers for idle workers (BLPOP)
``P:{Q}:events``       STREAM     job events, trimmed to a maximum length
``P:{Q}:stats``        HASH       cumulative counters and per-second buckets
``P:{Q}:taskstats``    HASH       task name -> run-time statistics of the task's
                                  successful executions (``lua/lib/stats.lua``)
``P:{Q}:limits``       HASH       concurrency and rate limits of the queue and
                                  its tasks, and their state (``lua/lib/limits.lua``)
``P:{Q}:progress``     HASH       job id -> progress JSON of running jobs
                                  (``lua/progress.lua``; swept, expires when idle)
``P:{Q}:schedules``    HASH       schedule id -> run state + definition (JSON),
                                  see :mod:`scheduler.cron.state`
``P:{Q}:cron``         ZSET       schedule id scored by next fire time (ms)
``P:{Q}:lreqs``         HASH       lease reply cache: request id -> leases made
                                  (``token,id,...``), see ``lua/lib/replies.lua``
``P:{Q}:lreqx``         ZSET       request id scored by its cache entry's expiry (ms)
=====================  =========  ==============================================

Cross-queue registries (separate keys, updated non-atomically, see docs/design.md
"Redis Cluster"): ``P:queues`` (SET of queue names), ``P:workers`` (ZSET of
worker ids scored by last heartbeat, ms), ``P:worker:<id>`` (HASH of worker
details, with a TTL).

A queue's key set is constant (no per-request or per-job keys), so on a Redis
Cluster a slot migration moves a dozen keys per queue.

Pub/sub channel ``P:{Q}:finished`` carries the id of every job that reaches a
final state (succeeded, dead, cancelled); :meth:`scheduler.Job.result` waits on it.
It is a shard channel (``SPUBLISH``/``SSUBSCRIBE``) when the queue's meta field
``pubsub`` is ``sharded`` (set on a Redis Cluster >= 7, see
:meth:`scheduler.backend.core.Backend.register_queue`), else a plain one.
Pub/sub channel ``P:schedules:changed`` carries the queue name whenever a
schedule is created, changed, paused, resumed or removed; sleeping cron
processes wait on it (channels are not keys: no hash tag needed).

Names are validated by :mod:`scheduler.validation` before they get here, so a
queue name can never contain ``{``/``}`` and break its hash tag.
"""

from __future__ import annotations

import functools

import attrs

__all__ = [
    "EXTENDED_KEY_NAMES",
    "LEASE_KEY_NAMES",
    "PROGRESS_KEY_NAME",
    "STANDARD_KEY_NAMES",
    "QueueKeys",
    "global_keys",
]

#: The order of the standard KEYS every queue script receives (KEYS[1..11]).
#: ``lua/lib/keys.lua`` names them in the same order.
STANDARD_KEY_NAMES: tuple[str, ...] = (
    "jobs",
    "ready",
    "delayed",
    "leased",
    "dead",
    "done",
    "meta",
    "wake",
    "events",
    "stats",
)

#: The keys the learning and limit scripts (enqueue, complete, lease,
#: cron_fire, queue_limit) receive after the standard ones (KEYS[11..12]),
#: in this order; ``lua/lib/keys.lua`` names them ``K_TASKSTATS``,
#: ``K_LIMITS``. Only the scripts that use them get them, so the other
#: scripts' KEYS stay as they were.
EXTENDED_KEY_NAMES: tuple[str, ...] = ("taskstats", "limits")

#: The extra KEYS of the lease script, after the extended ones (KEYS[13..14]):
#: the queue's lease reply cache and its expiry index (``lua/lease.lua``).
LEASE_KEY_NAMES: tuple[str, ...] = ("lreqs", "lreqx")

#: The key ``progress.lua`` alone receives after the extended ones (KEYS[13]).
PROGRESS_KEY_NAME = "progress"


@attrs.frozen(slots=False)
class QueueKeys:
    """Key names of one queue.

    Attributes:
        prefix: key prefix (validated), e.g. ``"sched"``.
        queue: queue name (validated).
    """

    prefix: str
    queue: str

    @property
    def base(self) -> str:
        """``P:{Q}`` -- the common stem carrying the hash tag."""
        return f"{self.prefix}:{{{self.queue}}}"

    def key(self, name: str) -> str:
        """Return the key ``P:{Q}:<name>``."""
        return f"{self.base}:{name}"

    @property
    def jobs(self) -> str:
        return self.key("jobs")

    @property
    def ready(self) -> str:
        return self.key("ready")

    @property
    def delayed(self) -> str:
        return self.key("delayed")

    @property
    def leased(self) -> str:
        return self.key("leased")

    @property
    def dead(self) -> str:
        return self.key("dead")

    @property
    def done(self) -> str:
        return self.key("done")

    @property
    def meta(self) -> str:
        return self.key("meta")

    @property
    def wake(self) -> str:
        return self.key("wake")

    @property
    def events(self) -> str:
        return self.key("events")

    @property
    def stats(self) -> str:
        return self.key("stats")

    @property
    def taskstats(self) -> str:
        return self.key("taskstats")

    @property
    def limits(self) -> str:
        return self.key("limits")

    @property
    def progress(self) -> str:
        return self.key(PROGRESS_KEY_NAME)

    @property
    def schedules(self) -> str:
        return self.key("schedules")

    @property
    def cron(self) -> str:
        return self.key("cron")

    @property
    def finished_channel(self) -> str:
        """Pub/sub channel announcing job ids that reached a final state."""
        return self.key("finished")

    @property
    def lease_cache(self) -> str:
        """Lease reply cache (HASH request id -> leases made; makes lease retries idempotent)."""
        return self.key("lreqs")

    @property
    def lease_cache_index(self) -> str:
        """Expiry index of :attr:`lease_cache` (ZSET request id by expiry, ms)."""
        return self.key("lreqx")

    def lease_keys(self) -> list[str]:
        """The lease script's KEYS: the extended ones, then :data:`LEASE_KEY_NAMES`."""
        return [*self._extended, *(self.key(name) for name in LEASE_KEY_NAMES)]

    def standard(self) -> list[str]:
        """The standard KEYS list, in :data:`STANDARD_KEY_NAMES` order (cached)."""
        return list(self._standard)

    @functools.cached_property
    def _standard(self) -> list[str]:
        return [self.key(name) for name in STANDARD_KEY_NAMES]

    def extended(self) -> list[str]:
        """The standard KEYS followed by :data:`EXTENDED_KEY_NAMES`
        (KEYS[1..12]; cached)."""
        return list(self._extended)

    @functools.cached_property
    def _extended(self) -> list[str]:
        return [self.key(name) for name in STANDARD_KEY_NAMES + EXTENDED_KEY_NAMES]


@attrs.frozen
class GlobalKeys:
    """Cross-queue registry keys (not hash-tagged; touched outside Lua scripts)."""

    prefix: str

    @property
    def queues(self) -> str:
        return f"{self.prefix}:queues"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def schedules_channel(self) -> str:
        """Pub/sub channel announcing schedule changes (message: the queue name)."""
        return f"{self.prefix}:schedules:changed"


def global_keys(prefix: str) -> GlobalKeys:
    """Return the registry keys for ``prefix``."""
    return GlobalKeys(prefix)
