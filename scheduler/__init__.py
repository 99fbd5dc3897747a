"""scheduler: a priority job scheduler on Redis.

Jobs wait in Redis sorted sets, ready jobs ordered by
``priority = weight * time / resource`` (higher first, FIFO among equals),
delayed jobs by ETA. Every state change is one atomic Lua script; time comes
from the Redis server; workers hold leases with fencing tokens and
heartbeats. Delivery is at-least-once.

Quick use::

    from scheduler import Scheduler

    app = Scheduler.from_url("redis://localhost:6379/0")

    @app.task(time=2.0)
    def resize(path: str) -> str: ...

    job = resize.enqueue("a.png")
    job.result(timeout=10)

and run workers with ``scheduler worker mymodule:app``.
"""

from scheduler.app import Scheduler
from scheduler.backend.record import JobState
from scheduler.cron import (
    CronRunner,
    InvalidScheduleError,
    MisfirePolicy,
    Schedule,
    ScheduleInfo,
    ScheduleNotFoundError,
)
from scheduler.errors import (
    InvalidNameError,
    InvalidPriorityError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    PayloadError,
    ResultTimeoutError,
    SchedulerError,
    ScriptError,
    UnknownTaskError,
    ValidationError,
)
from scheduler.job import Job, JobInfo
from scheduler.priority import compute_priority
from scheduler.task import Backoff, EnqueueOptions, JobSpec, Task
from scheduler.worker import Worker
from scheduler.worker.observer import WorkerObserver

__all__ = [
    "Backoff",
    "CronRunner",
    "EnqueueOptions",
    "InvalidNameError",
    "InvalidPriorityError",
    "InvalidScheduleError",
    "Job",
    "JobCancelledError",
    "JobFailedError",
    "JobInfo",
    "JobNotFoundError",
    "JobSpec",
    "JobState",
    "MisfirePolicy",
    "PayloadError",
    "ResultTimeoutError",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "Scheduler",
    "SchedulerError",
    "ScriptError",
    "Task",
    "UnknownTaskError",
    "ValidationError",
    "Worker",
    "WorkerObserver",
    "compute_priority",
]
