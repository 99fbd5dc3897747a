"""The storage layer: one object that owns the client, the key names, the
scripts and every read of Redis.

Everything above it (the app, jobs, the worker, cron, the admin reads,
metrics) talks to Redis only through a :class:`Backend`: it never sends a
raw command and never spells a key. See ``docs/design.md``, "Map of the code".
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from typing import Any

import redis

from scheduler import defaults
from scheduler.backend import topology
from scheduler.backend.connection import blocking_client, client_from_url, server_time_ms
from scheduler.backend.cron_scripts import CronScripts
from scheduler.backend.events import EventReads
from scheduler.backend.keys import GlobalKeys, QueueKeys
from scheduler.backend.learned import LearnedReads
from scheduler.backend.progress import ProgressStore
from scheduler.backend.queue_reads import QueueReads
from scheduler.backend.record import JobRecord, parse_record
from scheduler.backend.registry import WorkerRegistry
from scheduler.backend.replies import text
from scheduler.backend.schedules import ScheduleReads
from scheduler.backend.scripts import Scripts
from scheduler.backend.subscription import Subscription
from scheduler.backend.waiting import WakeSignals
from scheduler.backend.workers import WorkerPresence
from scheduler.errors import InvalidNameError
from scheduler.validation import validate_prefix, validate_queue_name

__all__ = ["Backend"]

log = logging.getLogger("scheduler.backend")

#: Queues whose key names are cached per backend (more are built on demand).
_KEY_CACHE = 4096


class Backend(
    ScheduleReads,
    QueueReads,
    EventReads,
    WorkerRegistry,
    WakeSignals,
    WorkerPresence,
    LearnedReads,
    ProgressStore,
):
    """Redis storage of one key prefix: keys, scripts, registries and reads.

    Args:
        client: a ``redis.Redis`` (a single server, or a Sentinel master
            client) or a ``redis.cluster.RedisCluster``; bytes or decoded
            responses both work.
        prefix: key prefix (validated), see :mod:`scheduler.backend.keys`.
        events_maxlen: approximate cap of each queue's event stream; 0 turns
            events off.

    Attributes:
        client: the redis-py client.
        prefix: the key prefix.
        keys: the cross-queue registry key names.
        scripts: the job scripts (:class:`scheduler.backend.scripts.Scripts`).

    Raises:
        InvalidNameError: a malformed prefix.
    """

    def __init__(
        self,
        client: topology.RedisClient,
        *,
        prefix: str = defaults.PREFIX,
        events_maxlen: int = defaults.EVENTS_MAXLEN,
    ) -> None:
        self.client = topology.as_redis(client)
        self.prefix = validate_prefix(prefix)
        self.keys = GlobalKeys(self.prefix)
        self.scripts = Scripts(self.client, events_maxlen=events_maxlen)
        self._queue_keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Backend:
        """A backend on a new client for ``url`` (see
        :func:`scheduler.backend.connection.client_from_url`); keyword
        arguments go to :class:`Backend`."""
        return cls(client_from_url(url), **kwargs)

    @property
    def events_maxlen(self) -> int:
        """The event stream cap the scripts apply (0: events off)."""
        return self.scripts.events_maxlen

    @functools.cached_property
    def cron_scripts(self) -> CronScripts:
        """The schedule scripts (loaded on first use)."""
        return CronScripts(self.client, events_maxlen=self.events_maxlen)

    def close(self) -> None:
        """Close the client's connections and those of script calls."""
        self.scripts.close()
        if "cron_scripts" in self.__dict__:  # created (cached_property)
            self.cron_scripts.close()
        self.client.close()

    # -- queues ---------------------------------------------------------------

    def queue(self, name: str) -> QueueKeys:
        """Key names of queue ``name`` (validated; cached).

        Raises:
            InvalidNameError: a malformed queue name.
        """
        found = self._queue_keys.get(name)
        if found is None:
            found = QueueKeys(self.prefix, validate_queue_name(name))
            if len(self._queue_keys) < _KEY_CACHE:
                self._queue_keys[name] = found
        return found

    def register_queue(self, name: str) -> None:
        """Add ``name`` to the queue registry (once per backend; idempotent).

        On a Redis Cluster >= 7 also set the queue's ``pubsub`` meta field to
        ``sharded``: its scripts then announce finished jobs with
        ``SPUBLISH`` and :meth:`subscribe_finished` uses ``SSUBSCRIBE``
        (``lua/lib/signals.lua``; the one place that choice is stored).
        """
        if name not in self._registered:
            qk = self.queue(name)
            # Through the script call path: retried through a failover.
            writes: list[tuple[str, ...]] = [("SADD", self.keys.queues, qk.queue)]
            if self.sharded_pubsub:
                writes.append(("HSET", qk.meta, "pubsub", "sharded"))
            self.scripts.write(writes)
            with self._lock:
                self._registered.add(name)

    @functools.cached_property
    def sharded_pubsub(self) -> bool:
        """True on a Redis Cluster whose nodes run Redis >= 7 (``SPUBLISH``
        and ``SSUBSCRIBE`` exist): per-queue notifications are sharded
        there. Read once (``INFO server`` of the cluster client's default
        node; a cluster's nodes are expected to run the same major version)."""
        if not topology.is_cluster(self.client):
            return False
        info = self.client.info("server")
        version = str(info.get("redis_version", "0"))
        major = version.split(".", 1)[0]
        return major.isdigit() and int(major) >= 7

    def queue_names(self) -> list[str]:
        """All queues in the registry of this prefix, sorted.

        A member that is not a valid queue name (written by an older version,
        or by hand) is skipped and logged, so one bad member never stops the
        readers of every queue (``status``, ``events``, ``job show``, cron).
        """
        names = []
        for member in self.client.smembers(self.keys.queues):
            name = text(member)
            try:
                names.append(validate_queue_name(name))
            except InvalidNameError:
                log.warning(
                    "skipping %r in the queue registry %s: not a valid queue name",
                    member,
                    self.keys.queues,
                )
        return sorted(names)

    # -- time -----------------------------------------------------------------

    def server_time_ms(self, queue: str | None = None) -> int:
        """The Redis server's clock (``TIME``), ms since the Unix epoch.

        Records hold server times, so ages and next fire times are measured
        against this clock, never the local one. On a Redis Cluster, with
        ``queue``: the clock of the master that owns the queue (the one its
        scripts read); without: the cluster client's default node (the
        cross-queue views: status, events positions, cron's sleep). See
        ``docs/design.md``, "Redis Cluster".

        Raises:
            InvalidNameError: a malformed queue name.
        """
        key = None if queue is None else self.queue(queue).jobs
        return server_time_ms(self.client, key)

    # -- records --------------------------------------------------------------

    def read_record(self, queue: str, job_id: str) -> JobRecord | None:
        """The record of ``job_id`` in ``queue``, or None if there is none.

        Raises:
            ValueError: the stored record is damaged.
        """
        raw = self.client.hget(self.queue(queue).jobs, job_id)
        return None if raw is None else parse_record(job_id, raw)

    def read_record_and_deadline(
        self, queue: str, job_id: str
    ) -> tuple[JobRecord | None, float | None]:
        """The record and lease deadline (ms; None unless leased), read atomically.

        Raises:
            ValueError: the stored record is damaged.
        """
        qk = self.queue(queue)
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(qk.jobs, job_id)
        pipe.zscore(qk.leased, job_id)
        raw, deadline = pipe.execute()
        if raw is None:
            return None, None
        return parse_record(job_id, raw), None if deadline is None else float(deadline)

    def raw_records(self, queue: str, job_ids: Sequence[str]) -> list[str | None]:
        """The stored record texts of ``job_ids`` (None where absent), in order."""
        if not job_ids:
            return []
        raws = self.client.hmget(self.queue(queue).jobs, list(job_ids))
        return [None if r is None else text(r) for r in raws]

    def has_job(self, queue: str, job_id: str) -> bool:
        """True if ``queue`` holds a record of ``job_id``."""
        return bool(self.client.hexists(self.queue(queue).jobs, job_id))

    # -- connections for blocking waits ----------------------------------------

    def blocking_client(self, block_seconds: float) -> redis.Redis:
        """A new client to the same server for blocking calls of up to
        ``block_seconds`` (see :func:`scheduler.backend.connection.blocking_client`)."""
        return blocking_client(self.client, block_seconds)

    def subscribe(self, channels: list[str], max_wait: float) -> Subscription:
        """A pub/sub subscription to ``channels`` on a dedicated connection
        whose single waits last up to ``max_wait`` seconds.

        Raises:
            redis.RedisError: the subscription could not be made.
        """
        return Subscription(self.client, channels, max_wait)

    def subscribe_finished(self, queue: str, max_wait: float) -> Subscription:
        """A subscription to ``queue``'s ``finished`` channel, sharded
        (``SSUBSCRIBE``) if the queue's scripts ``SPUBLISH`` (its ``pubsub``
        meta field, see :meth:`register_queue`), else plain.

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: the subscription could not be made.
        """
        qk = self.queue(queue)
        sharded = text(self.client.hget(qk.meta, "pubsub") or "") == "sharded"
        return Subscription(self.client, [qk.finished_channel], max_wait, sharded=sharded)

    def publish(self, channel: str, message: str) -> None:
        """Publish ``message`` on pub/sub ``channel``."""
        self.client.publish(channel, message)
