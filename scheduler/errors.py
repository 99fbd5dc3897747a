"""Exceptions raised by the scheduler.

All inherit from :class:`SchedulerError`. Input errors also inherit from
:class:`ValueError` so generic ``except ValueError`` handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "DamagedRecordError",
    "InvalidNameError",
    "InvalidPriorityError",
    "JobCancelledError",
    "JobFailedError",
    "JobNotFoundError",
    "JobTimeoutError",
    "PayloadError",
    "ResultTimeoutError",
    "SchedulerError",
    "ScriptError",
    "UnknownOptionError",
    "UnknownTaskError",
    "ValidationError",
]


class SchedulerError(Exception):
    """Base class of every error raised by this package."""


class ValidationError(SchedulerError, ValueError):
    """Bad input detected before anything was written to Redis."""


class InvalidNameError(ValidationError):
    """A queue name, job id, task name, schedule id or prefix is not allowed."""


class InvalidPriorityError(ValidationError):
    """``weight``/``time``/``resource``/``priority`` out of range or not finite."""


class PayloadError(ValidationError):
    """Arguments, metadata or a result cannot be stored exactly as JSON: not
    JSON-serializable (NaN/Infinity included), an object key that is not a
    ``str`` (at any depth), nesting deeper than the limit, text that is not
    valid Unicode (lone surrogates), or over the size limit."""


class UnknownOptionError(ValidationError, TypeError):
    """An unknown keyword option (``app.task(colour=...)``,
    ``app.enqueue(..., dealy=5)``). Also a :class:`TypeError`, what Python
    raises for an unexpected keyword argument."""


class JobNotFoundError(SchedulerError, KeyError):
    """No job with this id exists (never enqueued, or its record expired)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "job not found"


class UnknownTaskError(SchedulerError, LookupError):
    """A worker leased a job whose task name is not registered in its app."""


class JobTimeoutError(SchedulerError, TimeoutError):
    """A job's attempt ran longer than its ``timeout`` (seconds; task option
    or per-job :class:`scheduler.EnqueueOptions`).

    Not raised in your code: the worker records it as the attempt's error
    (type ``JobTimeoutError``), and the job is retried or goes dead by its
    ``max_attempts`` like any failure -- whatever the task's ``retry_on``
    (a hang is not the task's own verdict). In a process pool the child
    running it is killed and replaced; a thread cannot be killed, so in a
    thread pool the task keeps running in the background and its result is
    refused (see ``docs/design.md``, "Execution timeout").
    """


class JobFailedError(SchedulerError):
    """Raised by :meth:`scheduler.Job.result` when the job ended dead.

    Attributes:
        job_id: the job id.
        error: the error message recorded for the last attempt.
        traceback: the formatted traceback of the last attempt ("" if none).
    """

    def __init__(self, job_id: str, error: str, traceback: str = "") -> None:
        super().__init__(f"job {job_id} failed: {error}")
        self.job_id = job_id
        self.error = error
        self.traceback = traceback


class JobCancelledError(SchedulerError):
    """Raised by :meth:`scheduler.Job.result` when the job was cancelled."""


class ResultTimeoutError(SchedulerError, TimeoutError):
    """:meth:`scheduler.Job.result` timed out before the job finished."""


class DamagedRecordError(SchedulerError, ValueError):
    """A stored job record is damaged: it fails the record grammar that the
    Python and the Lua decoders share (``scheduler/backend/record.py``).

    The scripts move such a record to dead with the same reason (see
    ``docs/design.md``, "Damaged records"); readers raise this instead.

    Attributes:
        job_id: the job id.
        reason: what is wrong, e.g. ``"priority is not a finite number"``
            (the same words as the Lua decoder's).
    """

    def __init__(self, job_id: str, reason: str) -> None:
        super().__init__(f"job {job_id}: damaged record: {reason}")
        self.job_id = job_id
        self.reason = reason


class ScriptError(SchedulerError):
    """A Lua script answered in a way the client does not understand
    (a version mismatch between scripts and client, or a bug)."""
