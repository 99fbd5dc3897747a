"""Prometheus metrics of the queues' state in Redis, shared by every worker's
metrics server and the standalone exporter (``scheduler metrics``).

Refreshed by a background thread every ``interval`` seconds through the
admin reads (:func:`scheduler.admin.queue_status`: one pipelined round trip
for the sizes and counters, a bounded scan of the ready set for the oldest
ready job, one read of the worker registry) and served from that cache, so a
scrape never touches Redis. Nothing here needs a worker: the exporter keeps
reporting when every worker of a queue is dead -- exactly when the alerts
must fire.

==============================================  ==============================
metric                                          labels
==============================================  ==============================
``scheduler_queue_jobs``                        queue, state (ready, delayed,
                                                leased, dead, done) -- depth
``scheduler_queue_oldest_ready_age_seconds``    queue -- how long the oldest
                                                ready job has waited (0 when
                                                none is ready)
``scheduler_queue_paused``                      queue (1 if paused)
``scheduler_queue_workers``                     queue -- live workers serving it
``scheduler_queue_events_total``                queue, event (enqueued,
                                                succeeded, failed, retried,
                                                dead, cancelled, expired,
                                                damaged) -- cumulative, all
                                                workers; ``rate()`` of
                                                ``event="dead"`` is the
                                                dead-letter rate
``scheduler_queue_lease_expired_total``         queue -- leases that expired
                                                (worker crashed or hung)
``scheduler_workers_live``                      -- live workers (all queues)
``scheduler_workers_jobs``                      state (running, buffered) --
                                                jobs the live workers hold
``scheduler_queue_refresh_timestamp_seconds``   -- when last refreshed
==============================================  ==============================

The ``*_total`` queue counters are Redis-side counters shared by every
worker, so every server exports the same values: aggregate them with
``max``, not ``sum``. ``docs/operating.md`` has example alert rules on
these names (``docs/alerts.yml``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from scheduler.admin.queues import TOTAL_NAMES, queue_status
from scheduler.admin.workers import list_workers
from scheduler.backend import Backend
from scheduler.backend.queue_reads import JOB_SETS
from scheduler.metrics.refresh import RefreshingCollector

__all__ = ["DEPTH_STATES", "QUEUE_METRIC_NAMES", "QueueCollector"]

#: The ``state`` label values of ``scheduler_queue_jobs`` (one sorted set each).
DEPTH_STATES = JOB_SETS

#: Every series name this collector exports (counters with their ``_total``).
QUEUE_METRIC_NAMES: tuple[str, ...] = (
    "scheduler_queue_jobs",
    "scheduler_queue_oldest_ready_age_seconds",
    "scheduler_queue_paused",
    "scheduler_queue_workers",
    "scheduler_queue_events_total",
    "scheduler_queue_lease_expired_total",
    "scheduler_workers_live",
    "scheduler_workers_jobs",
    "scheduler_queue_refresh_timestamp_seconds",
)


class QueueCollector(RefreshingCollector):
    """Queue depth, oldest ready age, counters and live workers, from Redis.

    :meth:`refresh` reads them; :meth:`start` runs it every ``interval``
    seconds in a daemon thread (:class:`RefreshingCollector`). Scrapes are
    served from the last refresh.

    Args:
        backend: the storage layer (client and key prefix).
        queues: queue names; None follows every registered queue (the
            registry is re-read at each refresh, so new queues appear).
        interval: seconds between refreshes.

    Raises:
        InvalidNameError: a malformed queue name.
    """

    def __init__(
        self, backend: Backend, queues: Sequence[str] | None, interval: float = 5.0
    ) -> None:
        super().__init__(interval)
        self._backend = backend
        self._queues = None if queues is None else [backend.queue(q).queue for q in queues]
        self._lock = threading.Lock()
        self._rows: dict[str, dict[tuple[str, ...], float]] = {}
        self._refreshed = 0.0

    what = "queue-metrics"

    def refresh(self) -> None:
        """Read every queue's state and the worker registry now.

        Raises:
            redis.RedisError: Redis could not be read (the cache is kept).
        """
        workers = list_workers(self._backend, prune=False)
        statuses = queue_status(self._backend, self._queues, workers=workers)
        rows: dict[str, dict[tuple[str, ...], float]] = {n: {} for n in QUEUE_METRIC_NAMES}
        for q in statuses:
            sizes = {"ready": q.ready, "delayed": q.delayed, "leased": q.leased}
            sizes.update(dead=q.dead, done=q.done)
            for state in DEPTH_STATES:
                rows["scheduler_queue_jobs"][(q.queue, state)] = sizes[state]
            age = q.oldest_ready_age or 0.0
            rows["scheduler_queue_oldest_ready_age_seconds"][(q.queue,)] = age
            rows["scheduler_queue_paused"][(q.queue,)] = 1 if q.paused else 0
            rows["scheduler_queue_workers"][(q.queue,)] = q.workers
            for name in TOTAL_NAMES:
                rows["scheduler_queue_events_total"][(q.queue, name)] = q.totals.get(name, 0)
            rows["scheduler_queue_lease_expired_total"][(q.queue,)] = q.totals.get("expired", 0)
        rows["scheduler_workers_live"][()] = len(workers)
        rows["scheduler_workers_jobs"][("running",)] = sum(w.running for w in workers)
        rows["scheduler_workers_jobs"][("buffered",)] = sum(w.buffered for w in workers)
        with self._lock:
            self._rows = rows
            self._refreshed = time.time()

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    @staticmethod
    def _families() -> dict[str, Any]:
        """One empty family per exported name (counters keyed by their ``_total`` name)."""
        return {
            "scheduler_queue_jobs": GaugeMetricFamily(
                "scheduler_queue_jobs",
                "Jobs in each state set of the queue.",
                labels=["queue", "state"],
            ),
            "scheduler_queue_oldest_ready_age_seconds": GaugeMetricFamily(
                "scheduler_queue_oldest_ready_age_seconds",
                "Seconds the oldest ready job of the queue has waited (0 if none is ready).",
                labels=["queue"],
            ),
            "scheduler_queue_paused": GaugeMetricFamily(
                "scheduler_queue_paused", "1 if the queue is paused.", labels=["queue"]
            ),
            "scheduler_queue_workers": GaugeMetricFamily(
                "scheduler_queue_workers", "Live workers serving the queue.", labels=["queue"]
            ),
            "scheduler_queue_events_total": CounterMetricFamily(
                "scheduler_queue_events",
                "Cumulative job transitions of the queue (all workers).",
                labels=["queue", "event"],
            ),
            "scheduler_queue_lease_expired_total": CounterMetricFamily(
                "scheduler_queue_lease_expired",
                "Leases that expired (worker stopped heartbeating), all workers.",
                labels=["queue"],
            ),
            "scheduler_workers_live": GaugeMetricFamily(
                "scheduler_workers_live", "Live workers of this key prefix (all queues)."
            ),
            "scheduler_workers_jobs": GaugeMetricFamily(
                "scheduler_workers_jobs",
                "Jobs the live workers hold: running (started) or buffered (prefetched).",
                labels=["state"],
            ),
            "scheduler_queue_refresh_timestamp_seconds": GaugeMetricFamily(
                "scheduler_queue_refresh_timestamp_seconds",
                "When the queue metrics were last read from Redis (Unix time).",
            ),
        }

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        with self._lock:
            rows, refreshed = self._rows, self._refreshed
        for name, values in rows.items():
            for labels, value in sorted(values.items()):
                families[name].add_metric(list(labels), value)
        if refreshed:
            families["scheduler_queue_refresh_timestamp_seconds"].add_metric([], refreshed)
        return list(families.values())
