"""Prometheus metrics (needs ``prometheus-client``:
``pip install 'redis-priority-scheduler[metrics]'``).

* :mod:`scheduler.metrics.worker` -- one worker's jobs
  (``scheduler worker ... --metrics-port``);
* :mod:`scheduler.metrics.queues` -- the queues' state in Redis, and
* :mod:`scheduler.metrics.tasks` -- the learned run times of each task,
  both served by every worker's server and by
* :mod:`scheduler.metrics.exporter` -- the standalone exporter
  (``scheduler metrics --port``), which needs no worker.

Every metric name, with its labels, is listed in ``docs/operating.md``.
"""

from scheduler.metrics.exporter import Exporter, start_exporter
from scheduler.metrics.queues import DEPTH_STATES, QUEUE_METRIC_NAMES, QueueCollector
from scheduler.metrics.refresh import RefreshingCollector
from scheduler.metrics.tasks import TASK_METRIC_NAMES, TaskStatsCollector
from scheduler.metrics.worker import (
    DURATION_BUCKETS,
    WAIT_BUCKETS,
    MetricsServer,
    WorkerMetrics,
    start_metrics_server,
)

__all__ = [
    "DEPTH_STATES",
    "DURATION_BUCKETS",
    "QUEUE_METRIC_NAMES",
    "TASK_METRIC_NAMES",
    "WAIT_BUCKETS",
    "Exporter",
    "MetricsServer",
    "QueueCollector",
    "RefreshingCollector",
    "TaskStatsCollector",
    "WorkerMetrics",
    "start_exporter",
    "start_metrics_server",
]
