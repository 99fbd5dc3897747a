"""The worker: leases jobs, runs them in a pool, heartbeats, reports."""

from scheduler.worker.observer import WorkerObserver
from scheduler.worker.worker import Worker

__all__ = ["Worker", "WorkerObserver"]
