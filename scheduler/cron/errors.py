"""Errors of cron and interval schedules."""

from __future__ import annotations

from scheduler.errors import SchedulerError, ValidationError

__all__ = ["InvalidScheduleError", "ScheduleNotFoundError"]


class InvalidScheduleError(ValidationError):
    """A schedule definition is not valid: bad cron expression, unknown
    timezone, bad interval, start/end, jitter or misfire setting. Raised at
    declaration, before anything is written to Redis."""


class ScheduleNotFoundError(SchedulerError, KeyError):
    """No schedule with this id exists (in the given queue, or in any queue)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "schedule not found"
