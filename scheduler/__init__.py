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

# The public API, grouped by area (imports and ``__all__`` alike); each group
# is one import block, kept sorted by ruff (``isort: split`` starts the next).

# App
from scheduler.app import Scheduler
from scheduler.codec import JSONCodec

# isort: split
# Tasks and jobs
from scheduler.backend.record import JobState
from scheduler.job import Job, JobInfo
from scheduler.priority import compute_priority
from scheduler.task import Backoff, EnqueueOptions, JobSpec, Task

# isort: split
# Writing tasks: the job's context, control from inside a task, hooks
from scheduler.backend.progress import Progress
from scheduler.context import JobContext, NoJobContextError, current_job
from scheduler.control import Abort, Fail, Retry, set_progress
from scheduler.middleware import Hooks
from scheduler.task import DelayFunction, Delays, PerException

# isort: split
# Schedules
from scheduler.cron import CronRunner, MisfirePolicy, Schedule, ScheduleInfo

# isort: split
# Worker
from scheduler.worker import Worker
from scheduler.worker.observer import WorkerObserver

# isort: split
# Errors
from scheduler.cron.errors import (
    DamagedScheduleError,
    InvalidScheduleError,
    ScheduleNotFoundError,
)
from scheduler.errors import (
    DamagedRecordError,
    InvalidNameError,
    InvalidPriorityError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    PayloadError,
    ResultTimeoutError,
    SchedulerError,
    ScriptError,
    UnknownOptionError,
    UnknownTaskError,
    ValidationError,
)

__all__ = [  # noqa: RUF022 -- grouped by area as above, sorted within each group
    # App
    "JSONCodec",
    "Scheduler",
    # Tasks and jobs
    "Backoff",
    "EnqueueOptions",
    "Job",
    "JobInfo",
    "JobSpec",
    "JobState",
    "Task",
    "compute_priority",
    # Writing tasks
    "Abort",
    "DelayFunction",
    "Delays",
    "Fail",
    "Hooks",
    "JobContext",
    "NoJobContextError",
    "PerException",
    "Progress",
    "Retry",
    "current_job",
    "set_progress",
    # Schedules
    "CronRunner",
    "MisfirePolicy",
    "Schedule",
    "ScheduleInfo",
    # Worker
    "Worker",
    "WorkerObserver",
    # Errors
    "DamagedScheduleError",
    "DamagedRecordError",
    "InvalidNameError",
    "InvalidPriorityError",
    "InvalidScheduleError",
    "JobCancelledError",
    "JobFailedError",
    "JobNotFoundError",
    "PayloadError",
    "ResultTimeoutError",
    "ScheduleNotFoundError",
    "SchedulerError",
    "ScriptError",
    "UnknownOptionError",
    "UnknownTaskError",
    "ValidationError",
]
