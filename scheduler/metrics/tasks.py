"""Prometheus metrics of the learned run times: per queue and task, the
statistics ``lua/complete.lua`` keeps (:mod:`scheduler.learning`), read with
:meth:`scheduler.backend.Backend.task_stats` -- one ``HGETALL`` per queue,
by a background thread every ``interval`` seconds; scrapes are served from
that cache. Served by every worker's metrics server (its queues) and by the
standalone exporter (every registered queue, or ``-q`` queues).

===================================================  =========================
metric                                               labels
===================================================  =========================
``scheduler_task_runs_total``                        queue, task -- successful
                                                     runs measured (counter)
``scheduler_task_duration_mean_seconds``             queue, task
``scheduler_task_duration_stddev_seconds``           queue, task
``scheduler_task_duration_cv``                       queue, task -- sd / mean
``scheduler_task_last_duration_seconds``             queue, task -- last run
``scheduler_task_last_finished_timestamp_seconds``   queue, task -- when it
                                                     finished (Unix time,
                                                     server clock)
===================================================  =========================

Mean and standard deviation only, no quantiles: the server keeps O(1) state
per task (count, mean, variance), updated in the completing script; a
quantile sketch would grow every task's record and the cost of every
completion. Per-worker quantiles are in the worker's
``scheduler_job_duration_seconds`` histogram (``histogram_quantile``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from scheduler.backend import Backend
from scheduler.learning import TaskStats
from scheduler.metrics.refresh import RefreshingCollector

__all__ = ["TASK_METRIC_NAMES", "TaskStatsCollector"]

#: Every series name this collector exports (the counter with its ``_total``).
TASK_METRIC_NAMES: tuple[str, ...] = (
    "scheduler_task_runs_total",
    "scheduler_task_duration_mean_seconds",
    "scheduler_task_duration_stddev_seconds",
    "scheduler_task_duration_cv",
    "scheduler_task_last_duration_seconds",
    "scheduler_task_last_finished_timestamp_seconds",
)

_LABELS = ["queue", "task"]


class TaskStatsCollector(RefreshingCollector):
    """Per queue and task: runs, mean, standard deviation, coefficient of
    variation and last run of the learned run times (successful runs, server
    clock; see :mod:`scheduler.learning`).

    Args:
        backend: the storage layer.
        queues: queue names; None follows every registered queue (re-read
            at each refresh).
        interval: seconds between refreshes.

    Raises:
        InvalidNameError: a malformed queue name.
    """

    what = "task-metrics"

    def __init__(
        self, backend: Backend, queues: Sequence[str] | None, interval: float = 5.0
    ) -> None:
        super().__init__(interval)
        self._backend = backend
        self._queues = None if queues is None else [backend.queue(q).queue for q in queues]
        self._lock = threading.Lock()
        self._stats: list[tuple[str, TaskStats]] = []

    def refresh(self) -> None:
        """Read every queue's task statistics now (a damaged row is skipped
        and logged by :meth:`~scheduler.backend.Backend.task_stats`).

        Raises:
            redis.RedisError: Redis could not be read (the cache is kept).
        """
        names = self._backend.queue_names() if self._queues is None else self._queues
        stats = [(q, s) for q in names for s in self._backend.task_stats(q)]
        with self._lock:
            self._stats = stats

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
    ]:
        return (
            CounterMetricFamily(
                "scheduler_task_runs",
                "Successful runs of the task measured for its learned run time.",
                labels=_LABELS,
            ),
            GaugeMetricFamily(
                "scheduler_task_duration_mean_seconds",
                "Mean run time of the task (server clock; exponentially weighted after 100 runs).",
                labels=_LABELS,
            ),
            GaugeMetricFamily(
                "scheduler_task_duration_stddev_seconds",
                "Standard deviation of the task's run time.",
                labels=_LABELS,
            ),
            GaugeMetricFamily(
                "scheduler_task_duration_cv",
                "Coefficient of variation (sd / mean) of the task's run time.",
                labels=_LABELS,
            ),
            GaugeMetricFamily(
                "scheduler_task_last_duration_seconds",
                "Run time of the task's last measured run.",
                labels=_LABELS,
            ),
            GaugeMetricFamily(
                "scheduler_task_last_finished_timestamp_seconds",
                "When the task's last measured run finished (Unix time, server clock).",
                labels=_LABELS,
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        runs, mean, sd, cv, last, finished = families = self._families()
        with self._lock:
            stats = self._stats
        for queue, s in stats:
            labels = [queue, s.task]
            runs.add_metric(labels, s.runs)
            mean.add_metric(labels, s.mean_ms / 1000)
            sd.add_metric(labels, s.sd_ms / 1000)
            cv.add_metric(labels, s.cv)
            last.add_metric(labels, s.last_duration_ms / 1000)
            finished.add_metric(labels, s.last_ms / 1000)
        return list(families)
