"""Prometheus metrics for a worker (``scheduler worker ... --metrics-port``).

Needs ``prometheus-client`` (``pip install 'redis-priority-scheduler[metrics]'``).

Two sources:

* **This worker's jobs**, counted as they happen through the worker's
  observer hook (:class:`scheduler.worker.worker.WorkerObserver`):

  ==========================================  ==============================
  metric                                      labels
  ==========================================  ==============================
  ``scheduler_jobs_leased_total``             queue, task
  ``scheduler_jobs_finished_total``           queue, task, outcome
                                              (succeeded, retried, dead,
                                              refused = lease lost)
  ``scheduler_job_duration_seconds``          queue, task (histogram)
  ``scheduler_jobs_released_total``           queue (given back at shutdown)
  ``scheduler_lease_lost_total``              queue (result refused: lease
                                              expired, job cancelled/purged)
  ``scheduler_jobs_in_flight``                queue (gauge, read at scrape)
  ==========================================  ==============================

* **The queues' state in Redis**, refreshed by a background thread every
  ``interval`` seconds with one pipelined round trip (a few ``ZCARD`` and
  ``HMGET`` per queue -- cheap at any queue size) and served from that cache,
  so a scrape never touches Redis:

  ==========================================  ==============================
  ``scheduler_queue_jobs``                    queue, state (ready, delayed,
                                              leased, dead, done) -- depth
  ``scheduler_queue_paused``                  queue (1 if paused)
  ``scheduler_queue_events_total``            queue, event (enqueued,
                                              succeeded, failed, retried,
                                              dead, cancelled, expired) --
                                              cumulative, all workers
  ``scheduler_queue_lease_expired_total``     queue -- leases that expired
                                              and were requeued or
                                              dead-lettered (all workers)
  ``scheduler_queue_refresh_timestamp_seconds``  -- when last refreshed
  ==========================================  ==============================

The ``*_total`` queue counters are Redis-side counters shared by every
worker, so every worker exports the same values: aggregate them with
``max``, not ``sum``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from scheduler import defaults
from scheduler.admin.queues import TOTAL_NAMES
from scheduler.backend import Backend
from scheduler.backend.queue_reads import JOB_SETS

if TYPE_CHECKING:
    from scheduler.worker.execution import LeasedJob
    from scheduler.worker.worker import Worker

__all__ = [
    "DEPTH_STATES",
    "DURATION_BUCKETS",
    "MetricsServer",
    "QueueCollector",
    "WorkerMetrics",
    "start_metrics_server",
]

log = logging.getLogger("scheduler.metrics")

#: Buckets of the job duration histogram, seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

#: The ``state`` label values of ``scheduler_queue_jobs`` (one sorted set each).
DEPTH_STATES = JOB_SETS


class WorkerMetrics:
    """Counters of one worker's jobs; pass it as the worker's ``observer``.

    Args:
        registry: where the metrics live (a fresh registry by default, so
            several workers in one process or test do not collide).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.leased = Counter(
            "scheduler_jobs_leased", "Jobs leased by this worker.", ["queue", "task"], registry=r
        )
        self.finished = Counter(
            "scheduler_jobs_finished",
            "Jobs this worker finished, by outcome "
            "(succeeded, retried, dead, refused = lease lost).",
            ["queue", "task", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "scheduler_job_duration_seconds",
            "Run time of jobs on this worker, seconds.",
            ["queue", "task"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.released = Counter(
            "scheduler_jobs_released",
            "Jobs this worker gave back to their queue at shutdown.",
            ["queue"],
            registry=r,
        )
        self.lease_lost = Counter(
            "scheduler_lease_lost",
            "Leases this worker found lost (expired, cancelled or purged) when reporting.",
            ["queue"],
            registry=r,
        )

    # WorkerObserver callbacks (dispatcher thread; prometheus-client is thread-safe)

    def on_leased(self, job: LeasedJob) -> None:
        """A job was leased."""
        self.leased.labels(job.queue, job.task).inc()

    def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None:
        """A job's report was applied (``outcome``: succeeded/retried/dead/refused)."""
        self.finished.labels(job.queue, job.task, outcome).inc()
        self.duration.labels(job.queue, job.task).observe(duration)

    def on_released(self, job: LeasedJob) -> None:
        """A job was released at shutdown."""
        self.released.labels(job.queue).inc()

    def on_lease_lost(self, job: LeasedJob) -> None:
        """A job's lease was found lost."""
        self.lease_lost.labels(job.queue).inc()


class _InFlightCollector:
    """``scheduler_jobs_in_flight{queue}``, read from the worker at scrape time."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "scheduler_jobs_in_flight", "Jobs this worker is running now.", labels=["queue"]
        )

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        counts = dict.fromkeys(self._worker.queues, 0)
        for job in self._worker.snapshot():
            counts[job.queue] = counts.get(job.queue, 0) + 1
        for queue, n in counts.items():
            family.add_metric([queue], n)
        return [family]


class QueueCollector:
    """Queue depth and cumulative counters of some queues, from Redis.

    :meth:`refresh` reads them in one pipelined round trip
    (:meth:`scheduler.backend.Backend.queue_snapshots`); :meth:`start` runs it
    every ``interval`` seconds in a daemon thread. Scrapes are served from the
    last refresh.

    Args:
        backend: the storage layer (client and key prefix).
        queues: queue names.
        interval: seconds between refreshes.

    Raises:
        InvalidNameError: a malformed queue name.
    """

    def __init__(self, backend: Backend, queues: Sequence[str], interval: float = 5.0) -> None:
        self._backend = backend
        self._queues = [backend.queue(q).queue for q in queues]
        self._interval = interval
        self._lock = threading.Lock()
        self._depth: dict[tuple[str, str], int] = {}
        self._paused: dict[str, int] = {}
        self._totals: dict[tuple[str, str], int] = {}
        self._refreshed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Read every queue's depth and counters now (one round trip).

        Raises:
            redis.RedisError: Redis could not be read (the cache is kept).
        """
        snapshots = self._backend.queue_snapshots(self._queues, stats=TOTAL_NAMES)
        depth, paused, totals = {}, {}, {}
        for snap in snapshots:
            for state in DEPTH_STATES:
                depth[(snap.queue, state)] = snap.sizes[state]
            paused[snap.queue] = 1 if snap.paused else 0
            for name in TOTAL_NAMES:
                totals[(snap.queue, name)] = int(snap.stats.get(name) or 0)
        with self._lock:
            self._depth, self._paused, self._totals = depth, paused, totals
            self._refreshed = time.time()

    def start(self) -> None:
        """Refresh now (errors logged), then every ``interval`` seconds in a thread."""
        self._refresh_logged()
        self._thread = threading.Thread(
            target=self._run, name="scheduler-metrics-refresh", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the refresh thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._refresh_logged()

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except (redis.RedisError, OSError) as exc:
            log.warning("queue metrics refresh failed: %s", exc)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> list[Any]:
        return [
            GaugeMetricFamily(
                "scheduler_queue_jobs",
                "Jobs in each state set of the queue.",
                labels=["queue", "state"],
            ),
            GaugeMetricFamily(
                "scheduler_queue_paused", "1 if the queue is paused.", labels=["queue"]
            ),
            CounterMetricFamily(
                "scheduler_queue_events",
                "Cumulative job transitions of the queue (all workers).",
                labels=["queue", "event"],
            ),
            CounterMetricFamily(
                "scheduler_queue_lease_expired",
                "Leases that expired (worker stopped heartbeating), all workers.",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "scheduler_queue_refresh_timestamp_seconds",
                "When the queue metrics were last read from Redis (Unix time).",
            ),
        ]

    def collect(self) -> Iterable[Metric]:
        depth_f, paused_f, events_f, expired_f, stamp_f = self._families()
        with self._lock:
            for (queue, state), n in sorted(self._depth.items()):
                depth_f.add_metric([queue, state], n)
            for queue, p in sorted(self._paused.items()):
                paused_f.add_metric([queue], p)
            for (queue, name), n in sorted(self._totals.items()):
                events_f.add_metric([queue, name], n)
                if name == "expired":
                    expired_f.add_metric([queue], n)
            refreshed = self._refreshed
        if refreshed:
            stamp_f.add_metric([], refreshed)
        return [depth_f, paused_f, events_f, expired_f, stamp_f]


class MetricsServer:
    """A running metrics endpoint (see :func:`start_metrics_server`).

    Attributes:
        port: the port it listens on (the real one if 0 was asked for).
        address: the address it is bound to.
        metrics: the worker's :class:`WorkerMetrics`.
        queues: the :class:`QueueCollector`.
    """

    def __init__(
        self, server: Any, thread: threading.Thread, metrics: WorkerMetrics, queues: QueueCollector
    ) -> None:
        self._server = server
        self._thread = thread
        self.port: int = int(server.server_port)
        self.address: str = str(server.server_address[0])
        self.metrics = metrics
        self.queues = queues

    def close(self) -> None:
        """Stop serving and stop the refresh thread."""
        self.queues.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    worker: Worker,
    port: int,
    *,
    addr: str = defaults.METRICS_ADDR,
    interval: float = 5.0,
    metrics: WorkerMetrics | None = None,
) -> MetricsServer:
    """Serve ``worker``'s metrics at ``http://addr:port/metrics`` (daemon thread).

    Args:
        worker: the worker; if its ``observer`` is not a :class:`WorkerMetrics`
            (and ``metrics`` is not given), one is created and installed.
        port: TCP port (0 picks a free one; see :attr:`MetricsServer.port`).
        addr: address to bind (default loopback only,
            :data:`scheduler.defaults.METRICS_ADDR`).
        interval: seconds between queue depth refreshes.
        metrics: the worker's :class:`WorkerMetrics`, if already made.

    Raises:
        OSError: the port cannot be bound.
    """
    if metrics is None:
        if isinstance(worker.observer, WorkerMetrics):
            metrics = worker.observer
        else:
            metrics = WorkerMetrics()
            worker.observer = metrics
    registry = metrics.registry
    queues = QueueCollector(worker.app.backend, worker.queues, interval)
    registry.register(queues)
    registry.register(_InFlightCollector(worker))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    queues.start()
    return MetricsServer(server, thread, metrics, queues)
