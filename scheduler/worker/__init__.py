"""The worker: leases jobs, runs them in a pool, heartbeats, reports.

It talks to Redis only through the app's storage layer
(:class:`scheduler.backend.Backend`) and never imports the app: what it
needs of one is :class:`WorkerApp`.
"""

from scheduler.worker.observer import WorkerObserver
from scheduler.worker.worker import Worker, WorkerApp

__all__ = ["Worker", "WorkerApp", "WorkerObserver"]
