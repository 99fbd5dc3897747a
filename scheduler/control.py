"""Control from inside a task: retry at a chosen time, give up now, report progress.

* ``raise Retry(delay=60)``: this attempt fails and the job is retried no
  earlier than ``delay`` seconds from now -- whatever the task's ``retry_on``
  and backoff say. The attempt counts: when it was the last one
  (``max_attempts``), the job goes dead like any failure.
* ``raise Fail("reason")`` (or its alias :class:`Abort`): the job goes dead
  now, with the reason, however many attempts are left.
* ``set_progress(0.4, "resized 4 of 10")``: visible in ``scheduler job show``,
  in the queue's events (``progress``) and on the handle (``job.progress``).

Pure: no Redis, no app (the worker maps these exceptions to outcomes, and
puts the progress callback in place; :mod:`scheduler.context`).
"""

from __future__ import annotations

import math
from datetime import timedelta

from scheduler import defaults
from scheduler.context import progress_reporter
from scheduler.errors import ValidationError
from scheduler.validation import shown

__all__ = ["Abort", "Fail", "Retry", "set_progress"]


class Retry(Exception):  # noqa: N818 - a request, named like Celery's, arq's and Huey's
    """Raise from a task to retry the job after ``delay`` seconds.

    Args:
        delay: seconds (or a ``timedelta``) from now, in
            ``[0, MAX_DURATION]``; None: the task's backoff for this attempt.
        reason: text recorded as the attempt's error.

    Raises:
        ValidationError: ``delay`` is not a finite non-negative number of
            seconds (raised where the task raises ``Retry``, so the attempt
            fails with that error instead -- still retried).
    """

    def __init__(self, delay: float | timedelta | None = None, reason: str = "") -> None:
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        if delay is not None:
            bad = isinstance(delay, bool) or not isinstance(delay, int | float)
            if bad or not (math.isfinite(delay) and 0 <= delay <= defaults.MAX_DURATION):
                raise ValidationError(
                    f"Retry delay must be seconds in [0, {defaults.MAX_DURATION:g}], "
                    f"got {shown(delay)}"
                )
        self.delay: float | None = None if delay is None else float(delay)
        self.reason = reason
        when = "by the task's backoff" if delay is None else f"in {float(delay):g} s"
        super().__init__(f"retry requested {when}" + (f": {reason}" if reason else ""))

    def __reduce__(self) -> tuple[type[Retry], tuple[float | None, str]]:
        return (type(self), (self.delay, self.reason))


class Fail(Exception):  # noqa: N818 - a request, like Huey's CancelExecution
    """Raise from a task to dead-letter the job now, with ``reason``, without
    retrying (whatever attempts are left)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason or "the task gave up")


class Abort(Fail):
    """Alias of :class:`Fail` (the job goes dead now)."""


def set_progress(value: float | None = None, message: str = "") -> None:
    """Report the running job's progress.

    Args:
        value: a fraction in ``[0, 1]`` (or None: only a message).
        message: short text, at most :data:`scheduler.defaults.PROGRESS_MESSAGE_CHARS`
            characters (longer is cut).

    Stored with the job while it runs (fenced by its lease: a worker that
    lost the lease cannot write) and emitted as a ``progress`` event. One
    script call per report: report a few times a second at most.

    Raises:
        ValidationError: ``value`` is not a number in ``[0, 1]``.
        NoJobContextError: called outside a job run by a worker.
    """
    if value is not None:
        bad = isinstance(value, bool) or not isinstance(value, int | float)
        if bad or not (0.0 <= value <= 1.0):
            raise ValidationError(f"progress must be a number in [0, 1], got {shown(value)}")
    if not isinstance(message, str):
        raise ValidationError(f"progress message must be a str, got {shown(message)}")
    progress_reporter()(
        None if value is None else float(value), message[: defaults.PROGRESS_MESSAGE_CHARS]
    )
