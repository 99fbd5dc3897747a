"""Cron and interval schedules (``docs/cron.md``).

Declare schedules in code with :meth:`scheduler.Scheduler.cron` and
:meth:`scheduler.Scheduler.every`; manage stored ones through
:attr:`scheduler.Scheduler.schedules` (a :class:`ScheduleStore`); run
:class:`CronRunner` (``scheduler cron module:app`` or ``scheduler worker
--with-cron``) in as many processes as you like -- each firing is enqueued
exactly once. See ``docs/cron.md``.

Modules, one job each:

* :mod:`~scheduler.cron.wallclock` -- pure: wall-clock time to instant in a zone (DST).
* :mod:`~scheduler.cron.rules` -- pure: cron (croniter) and interval rules.
* :mod:`~scheduler.cron.timing` -- pure: fire times within start/end (and the
  entry point of the fire-time math: re-exports the two above).
* :mod:`~scheduler.cron.memo` -- a rule remembering its next fire times.
* :mod:`~scheduler.cron.policy` -- pure misfire policy / firing plan, jitter.
* :mod:`~scheduler.cron.schedule` -- the definition: invariants, fire helpers, encoding.
* :mod:`~scheduler.cron.declare` -- a declaration's options validated into a definition.
* :mod:`~scheduler.cron.state` -- the stored record and :class:`ScheduleInfo`.
* :mod:`~scheduler.backend.cron_scripts` -- typed wrappers of the Lua scripts.
* :mod:`~scheduler.cron.store` -- :class:`ScheduleStore` (declare, sync, control, read).
* :mod:`~scheduler.cron.runner` -- :class:`CronRunner`, the firing loop and its life cycle.
* :mod:`~scheduler.cron.firing` -- one queue's due schedules fired, window by window.
* :mod:`~scheduler.cron.share` -- pure: where each cron process walks (home, arc).
* :mod:`~scheduler.cron.planning` -- a due schedule's ``cron_fire`` entry, planned now.
* :mod:`~scheduler.cron.ahead` -- firings planned ahead while a runner waits.
* :mod:`~scheduler.cron.report` -- outcomes: logs, damaged records, held-back schedules.
"""

from scheduler.cron.declare import ScheduleOptions, build_schedule
from scheduler.cron.errors import (
    DamagedScheduleError,
    InvalidScheduleError,
    ScheduleNotFoundError,
)
from scheduler.cron.policy import FirePlan, MisfirePolicy
from scheduler.cron.runner import CronRunner
from scheduler.cron.schedule import JobTemplate, Schedule
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
