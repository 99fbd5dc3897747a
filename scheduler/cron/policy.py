"""Misfire policies and the firing plan: what to enqueue when a schedule is due.

Pure functions (no Redis, no clock): the cron runner reads a schedule's
stored next fire time and the server's clock, calls :func:`plan_firing`,
and hands the plan to the ``cron_fire`` script, which applies it atomically
if the stored next fire time has not moved in the meantime.

A firing is *due* when its fire time is at or before now. A due firing at
most :data:`ON_TIME_MS` (1 s) late is *on time* -- the firing due now -- and
is never a misfire: every policy enqueues it, whatever ``misfire_grace``
(even 0). While a cron process is up, exactly one firing is due each time, a
few milliseconds late, so every policy runs it. When no cron process was up
(or all were stalled), firings can be more than 1 s late, and the policy
decides; ``misfire_grace`` only decides those (in effect the grace is
``max(misfire_grace, 1 s)``; both bounds are inclusive: a firing exactly
1000 ms late is on time, 1001 ms late is a misfire if the grace is shorter):

=============  ===============================================================
policy         due firings ``f1 < ... < fk`` (k >= 1) become
=============  ===============================================================
``skip``       one job for ``fk`` if it is on time or at most
               ``misfire_grace`` late; all others are skipped ("skip to the
               next")
``coalesce``   one job for ``fk``, however late, standing for all k (default)
``catch_up``   one job for each ``fi`` on time or at most ``misfire_grace``
               late, oldest first (at most ``batch`` per call); older ones
               are skipped
=============  ===============================================================

Firings that do not get their own job are *missed*; their number is recorded
in the first job's ``meta["missed"]`` and added to the schedule's counter
(exact for interval schedules; for cron schedules at most
:data:`MISSED_COUNT_CAP` per call).
"""

from __future__ import annotations

import enum
import hashlib

import attrs

from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.timing import (
    IntervalRule,
    Rule,
    count_fires,
    fires_between,
    latest_fire,
    next_fire,
)
from scheduler.validation import shown

__all__ = [
    "MISSED_COUNT_CAP",
    "ON_TIME_MS",
    "FirePlan",
    "MisfirePolicy",
    "jitter_offset",
    "on_time_until",
    "plan_firing",
]

#: Missed firings of a *cron* schedule are counted up to this many per call
#: (then the count is a lower bound): counting a week-long outage of a
#: per-second cron schedule one by one would take seconds. Interval
#: schedules are counted exactly (arithmetic, no cap).
MISSED_COUNT_CAP = 1000

#: A due firing at most this late (ms, inclusive) is on time: the firing due
#: now, run under every misfire policy whatever ``misfire_grace``. One
#: second is the cron resolution; a running cron process fires within ms.
ON_TIME_MS = 1000


class MisfirePolicy(enum.StrEnum):
    """What to do with firings that were due while no cron process ran them."""

    SKIP = "skip"
    COALESCE = "coalesce"
    CATCH_UP = "catch_up"

    @classmethod
    def parse(cls, value: object) -> MisfirePolicy:
        """Accept a policy or its name (``"catch-up"`` and ``"catchup"`` too).

        Raises:
            InvalidScheduleError: unknown policy.
        """
        if isinstance(value, MisfirePolicy):
            return value
        text = str(value).strip().lower().replace("-", "_")
        if text == "catchup":
            text = "catch_up"
        try:
            return cls(text)
        except ValueError:
            raise InvalidScheduleError(
                f"unknown misfire policy {shown(value)}; use skip, coalesce or catch_up"
            ) from None


@attrs.frozen
class FirePlan:
    """What one ``cron_fire`` call should do.

    Attributes:
        fires: fire times (ms) to enqueue a job for, ascending; may be empty.
        missed: due firings that get no job of their own (skipped or folded
            into a coalesced job); for cron rules capped at
            :data:`MISSED_COUNT_CAP`, exact for interval rules.
        next_ms: the schedule's new next fire time (ms), or None when no fire
            time is left (past its end). Later than every fire time due so
            far unless ``catch_up`` stopped at ``batch`` jobs: then it is the
            next firing still to catch up (already due).
    """

    fires: tuple[int, ...]
    missed: int
    next_ms: int | None


def plan_firing(
    rule: Rule,
    policy: MisfirePolicy,
    grace_ms: int,
    stored_next_ms: int,
    now_ms: int,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    batch: int = 100,
) -> FirePlan | None:
    """Plan the firing of a schedule whose stored next fire time is ``stored_next_ms``.

    Args:
        rule: the schedule's rule (:class:`~scheduler.cron.timing.CronRule` or
            :class:`~scheduler.cron.timing.IntervalRule`).
        policy: the misfire policy.
        grace_ms: ``misfire_grace`` in ms (>= 0): how late a firing may be
            and still run on its own under ``skip`` and ``catch_up``; a
            firing at most :data:`ON_TIME_MS` late always runs.
        stored_next_ms: the next fire time stored in Redis (ms).
        now_ms: the Redis server's clock (ms).
        start_ms, end_ms: the schedule's bounds (inclusive, ms), or None.
        batch: most jobs one plan may enqueue (``catch_up``), >= 1.

    Returns:
        The plan, or None if nothing is due yet (``stored_next_ms > now_ms``).
    """
    if stored_next_ms > now_ms:
        return None
    bounds = {"start_ms": start_ms, "end_ms": end_ms}
    grace = max(grace_ms, ON_TIME_MS)  # the firing due now is never a misfire
    following = next_fire(rule, stored_next_ms, **bounds)
    if following is None or following > now_ms:
        # The common case, one croniter step: only the stored firing is due.
        if policy is MisfirePolicy.COALESCE or now_ms - stored_next_ms <= grace:
            return FirePlan((stored_next_ms,), 0, following)
        return FirePlan((), 1, following)
    after_now = next_fire(rule, now_ms, **bounds)
    if policy is MisfirePolicy.CATCH_UP:
        cutoff = max(stored_next_ms, now_ms - grace)
        missed = count_fires(rule, stored_next_ms, cutoff, MISSED_COUNT_CAP, **bounds)
        fires = fires_between(rule, cutoff, now_ms, batch, **bounds)
        if stored_next_ms >= cutoff and (not fires or fires[0] != stored_next_ms):
            # The stored time is not a fire time of the rule (e.g. new zone
            # data moved it): still honour it once.
            fires = [stored_next_ms, *fires][:batch]
        if len(fires) == batch:
            following = next_fire(rule, fires[-1], **bounds)
            if following is not None and following <= now_ms:
                return FirePlan(tuple(fires), missed, following)
        return FirePlan(tuple(fires), missed, after_now)
    latest = latest_fire(rule, now_ms, **bounds)
    if latest is None or latest < stored_next_ms:
        latest = stored_next_ms
    missed = count_fires(rule, stored_next_ms, latest, MISSED_COUNT_CAP, **bounds)
    if policy is MisfirePolicy.SKIP and now_ms - latest > grace:
        if not isinstance(rule, IntervalRule):
            return FirePlan((), min(MISSED_COUNT_CAP, missed + 1), after_now)
        return FirePlan((), missed + 1, after_now)
    return FirePlan((latest,), missed, after_now)


def on_time_until(
    policy: MisfirePolicy, grace_ms: int, stored_next_ms: int, plan: FirePlan
) -> int | None:
    """How long the on-time plan of a firing holds: a cron process plans the
    coming firing ahead, while it waits, as :func:`plan_firing` with
    ``now_ms = stored_next_ms`` (the plan it would make right at the fire
    time), and this is the earliest server time (ms) at which
    :func:`plan_firing` would plan otherwise -- when the following fire
    time (``plan.next_ms``) is due too, or, except under ``coalesce``, when
    the firing is later than the grace. None: the plan never changes.

    For every ``now_ms`` from ``stored_next_ms`` up to (not including) the
    returned time, ``plan_firing(..., now_ms)`` returns ``plan``.
    """
    bounds = [] if plan.next_ms is None else [plan.next_ms]
    if policy is not MisfirePolicy.COALESCE:
        bounds.append(stored_next_ms + max(grace_ms, ON_TIME_MS) + 1)
    return min(bounds) if bounds else None


def jitter_offset(schedule_id: str, fire_ms: int, jitter_ms: int) -> int:
    """Deterministic pseudo-random delay in ``[0, jitter_ms)`` ms for one firing.

    Derived from the schedule id and fire time, so every cron process
    computes the same value for the same firing.
    """
    if jitter_ms <= 0:
        return 0
    digest = hashlib.sha256(f"{schedule_id}\x00{fire_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % jitter_ms
