"""Read-side queries for operators: queue status, job listings, workers, events.

Nothing here changes state: every change an operator makes goes through the
Lua scripts (:mod:`scheduler.backend.scripts`, via :class:`scheduler.Job` and
:class:`scheduler.Scheduler` methods). Every function takes the storage
layer (:class:`scheduler.backend.Backend`, ``app.backend``) and reads only
through it. The ``scheduler`` command line and the Prometheus metrics are
built on these functions.
"""

from scheduler.admin.events import (
    AUDIT,
    AUDIT_ACTIONS,
    Event,
    follow_events,
    recent_events,
    stream_position,
)
from scheduler.admin.jobs import LISTABLE_STATES, RETRYABLE_STATES, job_ids, list_jobs
from scheduler.admin.queues import (
    OLDEST_SCAN_LIMIT,
    TOTAL_NAMES,
    Overview,
    QueueStatus,
    overview,
    queue_status,
)
from scheduler.admin.workers import WorkerInfo, list_workers

__all__ = [
    "AUDIT",
    "AUDIT_ACTIONS",
    "LISTABLE_STATES",
    "OLDEST_SCAN_LIMIT",
    "RETRYABLE_STATES",
    "TOTAL_NAMES",
    "Event",
    "Overview",
    "QueueStatus",
    "WorkerInfo",
    "follow_events",
    "job_ids",
    "list_jobs",
    "list_workers",
    "overview",
    "queue_status",
    "recent_events",
    "stream_position",
]
