"""Prometheus metrics of one worker (``scheduler worker ... --metrics-port``).

Counted as they happen through the worker's observer hook
(:class:`scheduler.worker.observer.WorkerObserver`):

==========================================  ==================================
metric                                      labels
==========================================  ==================================
``scheduler_jobs_leased_total``             queue, task
``scheduler_jobs_finished_total``           queue, task, outcome (succeeded,
                                            retried, dead, refused = lease
                                            lost)
``scheduler_job_duration_seconds``          queue, task (histogram)
``scheduler_job_wait_seconds``              queue, task (histogram): enqueue
                                            to start of the first attempt
``scheduler_jobs_released_total``           queue (given back at shutdown)
``scheduler_lease_lost_total``              queue (result refused: lease
                                            expired, job cancelled/purged)
``scheduler_jobs_in_flight``                queue (gauge, read at scrape):
                                            running + buffered
``scheduler_jobs_running``                  queue (gauge): started
``scheduler_jobs_buffered``                 queue (gauge): leased ahead,
                                            waiting in the prefetch buffer
==========================================  ==================================

The worker's server also serves the :class:`scheduler.metrics.queues.QueueCollector`
and :class:`scheduler.metrics.tasks.TaskStatsCollector` families of the queues
it serves (see those modules).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from scheduler import defaults
from scheduler.metrics.exporter import Exporter
from scheduler.metrics.queues import QueueCollector
from scheduler.metrics.tasks import TaskStatsCollector

if TYPE_CHECKING:
    from scheduler.worker.execution import LeasedJob
    from scheduler.worker.worker import Worker

__all__ = [
    "DURATION_BUCKETS",
    "WAIT_BUCKETS",
    "MetricsServer",
    "WorkerMetrics",
    "start_metrics_server",
]

log = logging.getLogger("scheduler.metrics")

#: Buckets of the job duration histogram, seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

#: Buckets of the wait (enqueue to start) histogram, seconds.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600)


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
        self.wait = Histogram(
            "scheduler_job_wait_seconds",
            "Time from enqueue to the start of a job's first attempt on this worker, "
            "seconds (a delayed job's wait includes its delay).",
            ["queue", "task"],
            buckets=WAIT_BUCKETS,
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
        if job.attempt == 1 and job.enqueued_ms > 0:
            # Start = now - run time (worker clock); enqueue = server clock.
            started = time.time() - duration
            wait = max(0.0, started - job.enqueued_ms / 1000)
            self.wait.labels(job.queue, job.task).observe(wait)

    def on_released(self, job: LeasedJob) -> None:
        """A job was released at shutdown."""
        self.released.labels(job.queue).inc()

    def on_lease_lost(self, job: LeasedJob) -> None:
        """A job's lease was found lost."""
        self.lease_lost.labels(job.queue).inc()


class _InFlightCollector:
    """``scheduler_jobs_in_flight``/``_running``/``_buffered{queue}``, read from
    the worker at scrape time."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "scheduler_jobs_in_flight",
                "Jobs this worker holds leases on now (running + buffered).",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "scheduler_jobs_running", "Jobs this worker is running now.", labels=["queue"]
            ),
            GaugeMetricFamily(
                "scheduler_jobs_buffered",
                "Jobs this worker leased ahead and has not started (prefetch buffer).",
                labels=["queue"],
            ),
        ]

    def collect(self) -> Iterable[Metric]:
        held_f, running_f, buffered_f = self._families()
        held = dict.fromkeys(self._worker.queues, 0)
        running = dict.fromkeys(self._worker.queues, 0)
        for job in self._worker.snapshot():
            held[job.queue] = held.get(job.queue, 0) + 1
            if job.started:
                running[job.queue] = running.get(job.queue, 0) + 1
        for queue, n in held.items():
            held_f.add_metric([queue], n)
            running_f.add_metric([queue], running.get(queue, 0))
            buffered_f.add_metric([queue], n - running.get(queue, 0))
        return [held_f, running_f, buffered_f]


class MetricsServer(Exporter):
    """A running metrics endpoint (see :func:`start_metrics_server`).

    Attributes:
        port: the port it listens on (the real one if 0 was asked for).
        address: the address it is bound to.
        metrics: the worker's :class:`WorkerMetrics`.
        queues: the :class:`QueueCollector`.
        tasks: the :class:`TaskStatsCollector`.
    """

    def __init__(
        self,
        server: Any,
        thread: threading.Thread,
        metrics: WorkerMetrics,
        queues: QueueCollector,
        tasks: TaskStatsCollector,
    ) -> None:
        super().__init__(server, thread, queues, tasks)
        self.metrics = metrics


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
        worker: the worker; if none of its ``observers`` is a
            :class:`WorkerMetrics` (and ``metrics`` is not given), one is
            created and added to them (the user's observers stay).
        port: TCP port (0 picks a free one; see :attr:`MetricsServer.port`).
        addr: address to bind (default loopback only,
            :data:`scheduler.defaults.METRICS_ADDR`).
        interval: seconds between queue depth and task statistics refreshes.
        metrics: the worker's :class:`WorkerMetrics`, if already made.

    Raises:
        OSError: the port cannot be bound.
    """
    if metrics is None:
        found = [o for o in worker.observers if isinstance(o, WorkerMetrics)]
        metrics = found[0] if found else WorkerMetrics()
    if metrics not in worker.observers:
        worker.observers.append(metrics)  # next to the user's observers
    registry = metrics.registry
    queues = QueueCollector(worker.app.backend, worker.queues, interval)
    tasks = TaskStatsCollector(worker.app.backend, worker.queues, interval)
    registry.register(queues)
    registry.register(tasks)
    registry.register(_InFlightCollector(worker))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    queues.start()
    tasks.start()
    return MetricsServer(server, thread, metrics, queues, tasks)
