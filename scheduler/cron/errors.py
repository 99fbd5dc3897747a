"""Errors of cron and interval schedules."""

from __future__ import annotations

from scheduler.errors import SchedulerError, ValidationError

__all__ = ["DamagedScheduleError", "InvalidScheduleError", "ScheduleNotFoundError"]


class InvalidScheduleError(ValidationError):
    """A schedule definition is not valid: bad cron expression, unknown
    timezone, bad interval, start/end, jitter or misfire setting. Raised at
    declaration, before anything is written to Redis."""


class ScheduleNotFoundError(SchedulerError, KeyError):
    """No schedule with this id exists (in the given queue, or in any queue)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "schedule not found"


class DamagedScheduleError(SchedulerError):
    """A stored schedule record cannot be used: not a valid record, a
    definition that does not decode, or one that names another id or queue
    than where it is stored. Cron processes take such a schedule out of the
    cron set (it stops firing, the others go on); remove it, or store it
    again (``add`` / a declaration synced by a cron process replaces it).

    Attributes:
        schedule_id: the hash field it is stored under.
        queue: its queue.
        reason: what is wrong, one line.
    """

    def __init__(self, schedule_id: str, queue: str, reason: str) -> None:
        self.schedule_id = schedule_id
        self.queue = queue
        self.reason = reason
        super().__init__(
            f"schedule {schedule_id!r} in queue {queue!r} is damaged ({reason}); "
            f"remove it (scheduler schedules remove {schedule_id} -q {queue}) or store it again"
        )
