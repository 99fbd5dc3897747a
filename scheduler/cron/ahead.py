"""Firings planned ahead: what a cron process prepares while it waits.

When a firing is due, all that is left to do is one ``cron_fire`` call per
window of schedules: the records were read, the definitions decoded, the
croniter step taken, the job ids, metadata and script arguments built
before the fire time (:func:`plan_ahead`). Each entry carries the record
read and the time until which its plan holds
(:func:`scheduler.cron.policy.on_time_until`), so the script applies it only
if nothing changed meanwhile and the clock has not gone past what the
misfire policy allows; otherwise the runner plans that schedule again with
the current time (:mod:`scheduler.cron.planning`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from scheduler.backend.schedules import DueSchedule
from scheduler.cron.planning import fireable
from scheduler.cron.policy import FirePlan
from scheduler.cron.store import ScheduleStore

__all__ = ["ReadyFiring", "plan_ahead"]


@attrs.frozen
class ReadyFiring:
    """One schedule's coming firing, planned ahead.

    Attributes:
        schedule_id: the hash field read.
        score: its next fire time read from the cron set, ms (the firing).
        plan: the plan (:meth:`scheduler.cron.Schedule.plan_ahead`).
        args: the ``cron_fire`` entry, as its ARGV values
            (:meth:`scheduler.backend.cron_scripts.FireEntry.args`).
    """

    schedule_id: str
    score: int
    plan: FirePlan
    args: list[Any]


def plan_ahead(
    store: ScheduleStore, queue: str, due: Sequence[DueSchedule], batch: int
) -> list[ReadyFiring]:
    """The coming firings of ``due`` schedules of ``queue`` (records read
    ahead of their fire times), in order. Damaged records and schedules not
    active are left out: when due, they are handled (dropped, logged) by the
    runner's ordinary path.

    Args:
        store: the app's schedule store (builds the entries).
        queue: the queue the records were read from.
        due: the records read (:meth:`scheduler.backend.Backend.due_records`).
        batch: most jobs one plan may enqueue (the runner's ``batch``).
    """
    ready: list[ReadyFiring] = []
    for d in due:
        schedule, _ = fireable(queue, d)
        if schedule is None:
            continue
        plan, until = schedule.plan_ahead(d.score, batch)
        entry = store.entry(schedule, d.raw, d.score, plan, until)
        ready.append(ReadyFiring(d.schedule_id, d.score, plan, entry.args()))
    return ready
