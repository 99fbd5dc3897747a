"""What to send ``cron_fire`` for one due schedule, planned now.

The cron runner reads a window of due records, plans each here and fires the
window in one call: a schedule's plan (:meth:`scheduler.cron.Schedule.plan`:
fire times under its misfire policy, at the server time read), or a *drop*
when its record cannot fire -- damaged, or in the cron set while not active
-- with the reason for the log. Plans made ahead, while the runner waits, are
:mod:`scheduler.cron.ahead`; both decide what can fire with
:func:`fireable`.
"""

from __future__ import annotations

from scheduler.backend.cron_scripts import FireEntry
from scheduler.backend.schedules import DueSchedule
from scheduler.cron.errors import DamagedScheduleError
from scheduler.cron.policy import FirePlan
from scheduler.cron.schedule import Schedule
from scheduler.cron.state import ScheduleStatus, decode_record
from scheduler.cron.store import ScheduleStore

__all__ = ["Planned", "fireable", "plan_now"]

#: A planned entry and its note for the report: the entry, its plan (None
#: for a drop) and why it is dropped (empty otherwise).
Planned = tuple[FireEntry, FirePlan | None, str]


def fireable(queue: str, due: DueSchedule) -> tuple[Schedule | None, str]:
    """The schedule of a due record of ``queue`` if it can fire, else None
    and why not (its record is damaged, or it is in the cron set while not
    active)."""
    try:
        stored, schedule = decode_record(queue, due.schedule_id, due.record)
    except DamagedScheduleError as exc:
        return None, exc.reason
    if stored.status is not ScheduleStatus.ACTIVE:
        return None, f"in the cron set while {stored.status.value}"
    return schedule, ""


def plan_now(store: ScheduleStore, queue: str, due: DueSchedule, now: int, batch: int) -> Planned:
    """The ``cron_fire`` entry of one due schedule of ``queue`` at server
    time ``now`` (ms): its firing plan (at most ``batch`` jobs), or a drop
    if it cannot fire (:func:`fireable`)."""
    schedule, problem = fireable(queue, due)
    if schedule is None:
        return FireEntry(due.schedule_id, due.raw, due.score, drop=True), None, problem
    plan = schedule.plan(due.score, now, batch)
    if plan is None:  # pragma: no cover - due.score <= now
        plan = FirePlan((), 0, due.score + 1)
    return store.entry(schedule, due.raw, due.score, plan), plan, ""
