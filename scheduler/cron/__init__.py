"""Cron and interval schedules (``docs/cron.md``).

Declare schedules in code with :meth:`scheduler.Scheduler.cron` and
:meth:`scheduler.Scheduler.every`; manage stored ones through
:attr:`scheduler.Scheduler.schedules` (a :class:`ScheduleStore`); run
:class:`CronRunner` (``scheduler cron module:app`` or ``scheduler worker
--with-cron``) in as many processes as you like -- each firing is enqueued
exactly once. See ``docs/cron.md``.

Modules, one job each:

* :mod:`~scheduler.cron.timing` -- pure fire-time math (croniter, zoneinfo, DST).
* :mod:`~scheduler.cron.memo` -- a rule remembering its next fire times.
* :mod:`~scheduler.cron.policy` -- pure misfire policy / firing plan, jitter.
* :mod:`~scheduler.cron.schedule` -- the definition: validation, encoding.
* :mod:`~scheduler.cron.state` -- the stored record and :class:`ScheduleInfo`.
* :mod:`~scheduler.backend.cron_scripts` -- typed wrappers of the Lua scripts.
* :mod:`~scheduler.cron.store` -- :class:`ScheduleStore` (declare, sync, control, read).
* :mod:`~scheduler.cron.runner` -- :class:`CronRunner`, the firing loop.
"""

from scheduler.cron.errors import (
    DamagedScheduleError,
    InvalidScheduleError,
    ScheduleNotFoundError,
)
from scheduler.cron.policy import FirePlan, MisfirePolicy
from scheduler.cron.runner import CronRunner
from scheduler.cron.schedule import JobTemplate, Schedule, ScheduleOptions, build_schedule
from scheduler.cron.state import ScheduleInfo, ScheduleStatus
from scheduler.cron.store import ScheduleStore

__all__ = [
    "CronRunner",
    "DamagedScheduleError",
    "FirePlan",
    "InvalidScheduleError",
    "JobTemplate",
    "MisfirePolicy",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "ScheduleOptions",
    "ScheduleStatus",
    "ScheduleStore",
    "build_schedule",
]
