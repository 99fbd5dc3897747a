"""Misfire policies and firing plans (scheduler.cron.policy): pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.policy import (
    MISSED_COUNT_CAP,
    ON_TIME_MS,
    FirePlan,
    MisfirePolicy,
    jitter_offset,
    on_time_until,
    plan_firing,
)
from scheduler.cron.timing import CronRule, IntervalRule

SEC = IntervalRule(1000)  # fires every whole second
TEN = IntervalRule(10_000)
SKIP, COALESCE, CATCH_UP = MisfirePolicy.SKIP, MisfirePolicy.COALESCE, MisfirePolicy.CATCH_UP


def test_nothing_due_means_no_plan() -> None:
    assert plan_firing(SEC, COALESCE, 60_000, 10_000, 9_999) is None


@pytest.mark.parametrize("policy", list(MisfirePolicy))
def test_an_on_time_firing_runs_under_every_policy(policy: MisfirePolicy) -> None:
    assert plan_firing(SEC, policy, 60_000, 10_000, 10_004) == FirePlan((10_000,), 0, 11_000)


def test_coalesce_runs_the_latest_once_for_all_missed() -> None:
    # Due: 10 000, 11 000, ..., 15 000 (6 firings); now 15 500.
    assert plan_firing(SEC, COALESCE, 0, 10_000, 15_500) == FirePlan((15_000,), 5, 16_000)


def test_skip_runs_the_latest_only_within_grace() -> None:
    assert plan_firing(SEC, SKIP, 2_000, 10_000, 15_500) == FirePlan((15_000,), 5, 16_000)
    # Every 10 s: due 10..50 s; the latest is 1.5 s late, more than on time.
    assert plan_firing(TEN, SKIP, 100, 10_000, 51_500) == FirePlan((), 5, 60_000)


@pytest.mark.parametrize("policy", [SKIP, CATCH_UP])
@pytest.mark.parametrize("grace", [0, 1, 500])
def test_the_firing_due_now_is_never_a_misfire(policy: MisfirePolicy, grace: int) -> None:
    # misfire_grace=0 used to drop every firing: the on-time one is 0 < late.
    for late in (0, 1, 4, 999, ON_TIME_MS):  # at most 1 s late: on time (inclusive)
        plan = plan_firing(TEN, policy, grace, 10_000, 10_000 + late)
        assert plan == FirePlan((10_000,), 0, 20_000), late
    # One ms more and (with a shorter grace) it is a misfire.
    assert plan_firing(TEN, policy, grace, 10_000, 11_001) == FirePlan((), 1, 20_000)
    # A cron rule whose next firing is far: the same boundary.
    minute = CronRule("* * * * *", "UTC")
    assert plan_firing(minute, policy, grace, 60_000, 61_000) == FirePlan((60_000,), 0, 120_000)
    assert plan_firing(minute, policy, grace, 60_000, 61_001) == FirePlan((), 1, 120_000)
    # Grace still decides the older ones: 1.5 s late needs a grace >= 1.5 s.
    assert plan_firing(TEN, policy, 1_500, 10_000, 11_500) == FirePlan((10_000,), 0, 20_000)
    assert plan_firing(TEN, policy, 1_500, 10_000, 11_501) == FirePlan((), 1, 20_000)


def test_catch_up_runs_each_firing_within_grace() -> None:
    # cutoff 13 500: 10..13 s are too old (missed), 14 s and 15 s run.
    assert plan_firing(SEC, CATCH_UP, 2_000, 10_000, 15_500) == FirePlan(
        (14_000, 15_000), 4, 16_000
    )
    assert plan_firing(SEC, CATCH_UP, 60_000, 10_000, 15_500) == FirePlan(
        (10_000, 11_000, 12_000, 13_000, 14_000, 15_000), 0, 16_000
    )
    # 100 ms of grace is less than on time: only the on-time firing (15 s) runs.
    assert plan_firing(SEC, CATCH_UP, 100, 10_000, 15_500) == FirePlan((15_000,), 5, 16_000)


def test_catch_up_in_batches_leaves_the_rest_due() -> None:
    first = plan_firing(SEC, CATCH_UP, 60_000, 10_000, 15_500, batch=4)
    assert first == FirePlan((10_000, 11_000, 12_000, 13_000), 0, 14_000)
    second = plan_firing(SEC, CATCH_UP, 60_000, 14_000, 15_600, batch=4)
    assert second == FirePlan((14_000, 15_000), 0, 16_000)


def test_end_bound_ends_the_schedule() -> None:
    assert plan_firing(SEC, COALESCE, 0, 12_000, 12_001, end_ms=12_000) == FirePlan(
        (12_000,), 0, None
    )
    # Past the end while down: the last firing before the end is the one to run.
    assert plan_firing(SEC, COALESCE, 0, 11_000, 20_000, end_ms=12_500) == FirePlan(
        (12_000,), 1, None
    )


def test_missed_count_is_capped_for_cron() -> None:
    rule = CronRule("* * * * * *", "UTC")
    stored = 1_700_000_000_000
    plan = plan_firing(rule, COALESCE, 0, stored, stored + 3 * 3_600_000 + 500)
    assert plan is not None
    assert plan.fires == (stored + 3 * 3_600_000,)
    assert plan.missed == MISSED_COUNT_CAP
    # Interval rules count exactly, under every policy (no cap).
    exact = plan_firing(SEC, COALESCE, 0, 0, 3 * 3_600_000)
    assert exact == FirePlan((3 * 3_600_000,), 3 * 3_600, 3 * 3_600_000 + 1000)
    skipped = plan_firing(TEN, SKIP, 0, 0, 3 * 3_600_000 + 5_500)
    assert skipped == FirePlan((), 3 * 360 + 1, 3 * 3_600_000 + 10_000)
    caught = plan_firing(SEC, CATCH_UP, 0, 0, 3 * 3_600_000 + 500)
    assert caught == FirePlan((3 * 3_600_000,), 3 * 3_600, 3 * 3_600_000 + 1000)


def test_policy_names() -> None:
    assert MisfirePolicy.parse("catch-up") is CATCH_UP
    assert MisfirePolicy.parse("CatchUp") is CATCH_UP
    assert MisfirePolicy.parse(SKIP) is SKIP
    with pytest.raises(InvalidScheduleError, match="misfire"):
        MisfirePolicy.parse("sometimes")


def test_jitter_is_deterministic_and_bounded() -> None:
    values = {jitter_offset("s", fire, 5_000) for fire in range(0, 1_000_000, 1000)}
    assert all(0 <= v < 5_000 for v in values) and len(values) > 500
    assert jitter_offset("s", 42_000, 5_000) == jitter_offset("s", 42_000, 5_000)
    assert jitter_offset("s", 42_000, 0) == 0


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(list(MisfirePolicy)),
    grace=st.integers(min_value=0, max_value=20_000),
    stored_s=st.integers(min_value=0, max_value=100),
    late=st.integers(min_value=0, max_value=60_000),
    batch=st.integers(min_value=1, max_value=8),
)
def test_plans_fire_due_times_only_and_always_advance(
    policy: MisfirePolicy, grace: int, stored_s: int, late: int, batch: int
) -> None:
    stored = stored_s * 1000
    now = stored + late
    plan = plan_firing(SEC, policy, grace, stored, now, batch=batch)
    assert plan is not None
    due = list(range(stored, now + 1, 1000))
    assert all(f in due for f in plan.fires) and list(plan.fires) == sorted(set(plan.fires))
    assert plan.next_ms is not None and plan.next_ms > stored  # progress: never re-fired
    assert not plan.fires or plan.next_ms > plan.fires[-1]
    if policy is COALESCE:
        assert plan.fires == (due[-1],) and plan.missed == len(due) - 1
    if late <= ON_TIME_MS or late <= grace:  # the latest due firing runs
        assert plan.fires[-1:] == (due[-1],) or (policy is CATCH_UP and len(plan.fires) == batch)
    if policy is SKIP:
        assert len(plan.fires) <= 1 and len(plan.fires) + plan.missed == len(due)
    if policy is CATCH_UP:
        assert all(now - f <= max(grace, ON_TIME_MS) for f in plan.fires)
        assert len(plan.fires) <= batch
        if plan.next_ms > now:  # nothing left to catch up: every due firing accounted for
            assert len(plan.fires) + plan.missed == len(due)


@settings(max_examples=300, deadline=None)
@given(
    policy=st.sampled_from(list(MisfirePolicy)),
    grace=st.integers(min_value=0, max_value=20_000),
    every_s=st.sampled_from([1, 2, 5, 60]),
    stored_s=st.integers(min_value=0, max_value=100),
    end_after=st.one_of(st.none(), st.integers(min_value=0, max_value=3)),
    offset=st.integers(min_value=0, max_value=200_000),
)
def test_a_plan_made_ahead_holds_exactly_until_its_bound(
    policy: MisfirePolicy,
    grace: int,
    every_s: int,
    stored_s: int,
    end_after: int | None,
    offset: int,
) -> None:
    # A cron process plans the coming firing before it is due (as at its fire
    # time); the plan is sent with on_time_until. Up to that bound the plan
    # made with the real clock is the same; at the bound it differs.
    rule = IntervalRule(every_s * 1000)
    stored = stored_s * every_s * 1000
    end = None if end_after is None else stored + end_after * every_s * 1000
    ahead = plan_firing(rule, policy, grace, stored, stored, end_ms=end)
    assert ahead is not None
    until = on_time_until(policy, grace, stored, ahead)
    now = stored + offset
    if until is None or now < until:
        assert plan_firing(rule, policy, grace, stored, now, end_ms=end) == ahead
    if until is not None:
        assert until > stored
        assert plan_firing(rule, policy, grace, stored, until, end_ms=end) != ahead


def test_a_plan_made_ahead_holds_until_the_next_firing_or_the_grace() -> None:
    on_time = FirePlan((10_000,), 0, 11_000)
    assert on_time_until(COALESCE, 0, 10_000, on_time) == 11_000
    assert on_time_until(SKIP, 0, 10_000, on_time) == 11_000  # grace is at least 1 s
    ten = FirePlan((10_000,), 0, 20_000)
    assert on_time_until(SKIP, 0, 10_000, ten) == 11_001  # 1001 ms late is a misfire
    assert on_time_until(CATCH_UP, 3_000, 10_000, ten) == 13_001
    assert on_time_until(COALESCE, 3_000, 10_000, FirePlan((10_000,), 0, None)) is None
