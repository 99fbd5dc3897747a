"""What became of each schedule a cron process sent to ``cron_fire``: the log
lines, the jobs counted, and the schedules held back.

* FIRED: the jobs are counted; a catch-up or a firing with misses is logged
  (INFO) with its fire times in ISO 8601.
* DROPPED: a damaged record (or one in the cron set while not active) was
  taken out of the cron set -- logged once (ERROR) with its schedule id,
  queue and why; the others go on.
* EARLY: its fire time is after the Redis clock: logged once (ERROR) and
  held back for :data:`RETRY_BROKEN` seconds instead of retried at once.
* LATE (planned ahead, too late now) and STALE (another process fired it,
  or it changed): nothing to say; the round reads it again.
"""

from __future__ import annotations

import logging

from scheduler.backend.codes import FireCode
from scheduler.backend.cron_scripts import FireOutcome
from scheduler.cron.policy import FirePlan
from scheduler.timeutil import ms_to_datetime

__all__ = ["RETRY_BROKEN", "FireReport"]

log = logging.getLogger("scheduler.cron")

#: Wait before retrying a schedule that cannot be fired yet (the server
#: clock behind its fire time), seconds. Damaged records are not retried:
#: they leave the cron set.
RETRY_BROKEN = 1.0


def _iso(ms: int) -> str:
    """A fire time (ms since the Unix epoch) for the log: ISO 8601, UTC, to the ms."""
    return ms_to_datetime(ms).isoformat(timespec="milliseconds")


class FireReport:
    """Reports the outcomes of one cron process's ``cron_fire`` entries.

    Times are of the local monotonic clock (``time.monotonic()``, seconds).
    """

    def __init__(self) -> None:
        #: Jobs enqueued by this process.
        self.jobs = 0
        #: (queue, schedule id) -> monotonic time until which it is held back.
        self._held: dict[tuple[str, str], float] = {}

    def held(self, queue: str, schedule_id: str, mono: float) -> bool:
        """True while the schedule is held back (its fire time was after the
        Redis clock less than :data:`RETRY_BROKEN` ago)."""
        return self._held.get((queue, schedule_id), 0.0) > mono

    def next_retry(self, mono: float) -> float | None:
        """Seconds from ``mono`` until the first held-back schedule may be
        retried, or None if none is held (those due are forgotten)."""
        self._held = {key: at for key, at in self._held.items() if at > mono}
        if not self._held:
            return None
        return min(self._held.values()) - mono

    def report(
        self,
        queue: str,
        schedule_id: str,
        plan: FirePlan | None,
        problem: str,
        outcome: FireOutcome,
        mono: float,
    ) -> bool:
        """Log and count one entry's outcome; True if the schedule moved.

        Args:
            queue: the queue fired in.
            schedule_id: the hash field read.
            plan: the plan sent, or None for a drop.
            problem: why a drop was sent (for the log); empty otherwise.
            outcome: the script's answer for the entry.
            mono: the monotonic time the entry was prepared.
        """
        key = (queue, schedule_id)
        if outcome.code is FireCode.EARLY:
            if key not in self._held:
                log.error(
                    "schedule %s in queue %s is due after the Redis clock (%d); retrying",
                    schedule_id,
                    queue,
                    outcome.value,
                )
            self._held[key] = mono + RETRY_BROKEN
            return False
        self._held.pop(key, None)
        if outcome.code is FireCode.LATE:  # planned ahead, now too late for it
            log.debug(
                "schedule %s in queue %s: planned too long ago, planning again", schedule_id, queue
            )
        elif outcome.code is FireCode.DROPPED:
            log.error(
                "schedule %s in queue %s is damaged (%s): taken out of the cron set, the "
                "others go on; remove it or store it again",
                schedule_id,
                queue,
                problem or "unreadable record",
            )
        elif outcome.code is FireCode.FIRED and plan is not None:
            self.jobs += outcome.value
            if plan.missed or len(plan.fires) > 1:
                log.info(
                    "schedule %s fired: %d job(s) for %s, %d missed, next %s",
                    schedule_id,
                    outcome.value,
                    ",".join(_iso(f) for f in plan.fires) or "-",
                    plan.missed,
                    "-" if plan.next_ms is None else _iso(plan.next_ms),
                )
        return True
