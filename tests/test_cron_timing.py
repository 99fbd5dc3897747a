"""Pure fire-time math (scheduler.cron.timing): DST tables checked by hand, properties.

The expectation tables are independent of the code: each UTC instant was
worked out by hand from the zone's rules (offsets and transition times), with
the contract "a repeated wall-clock time fires once (first occurrence); a
skipped one fires once, at the shift".
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.timing import (
    UTC_NAMES,
    CronRule,
    IntervalRule,
    count_fires,
    fires_between,
    get_zone,
    instant_to_wall,
    latest_fire,
    next_fire,
    wall_to_instant,
)


def ms(text: str) -> int:
    """UTC ISO text (``2024-03-31T01:00``) to ms since the epoch."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# (zone, expression, start instant UTC, the next fire times UTC)
TABLE: list[tuple[str, str, str, list[str]]] = [
    # Europe/Paris: CET +1 / CEST +2; shifts at 01:00 UTC on the last Sunday of
    # March (02:00 -> 03:00) and October (03:00 -> 02:00).
    # 02:30 daily. Skipped on spring days -> fires at the shift (03:00 CEST =
    # 01:00Z); repeated on autumn days -> fires once, at 02:30 CEST = 00:30Z.
    ("Europe/Paris", "30 2 * * *", "2023-03-25T12:00", ["2023-03-26T01:00", "2023-03-27T00:30"]),
    ("Europe/Paris", "30 2 * * *", "2023-10-28T12:00", ["2023-10-29T00:30", "2023-10-30T01:30"]),
    (
        "Europe/Paris",
        "30 2 * * *",
        "2024-03-29T12:00",
        ["2024-03-30T01:30", "2024-03-31T01:00", "2024-04-01T00:30"],
    ),
    ("Europe/Paris", "30 2 * * *", "2024-10-26T12:00", ["2024-10-27T00:30", "2024-10-28T01:30"]),
    ("Europe/Paris", "30 2 * * *", "2025-03-29T12:00", ["2025-03-30T01:00", "2025-03-31T00:30"]),
    ("Europe/Paris", "30 2 * * *", "2025-10-25T12:00", ["2025-10-26T00:30", "2025-10-27T01:30"]),
    # Hourly: the repeated 02:00 fires once (00:00Z, not again at 01:00Z);
    # on the spring day 02:00 is skipped and fires at the shift, together
    # with 03:00 CEST (the same instant).
    (
        "Europe/Paris",
        "0 * * * *",
        "2024-10-26T22:30",
        ["2024-10-26T23:00", "2024-10-27T00:00", "2024-10-27T02:00", "2024-10-27T03:00"],
    ),
    (
        "Europe/Paris",
        "@hourly",
        "2024-03-30T23:30",
        ["2024-03-31T00:00", "2024-03-31T01:00", "2024-03-31T02:00"],
    ),
    # 02:00, 02:20, 02:40: all three repeated (first pass) / all three skipped.
    (
        "Europe/Paris",
        "*/20 2 * * *",
        "2025-10-25T23:50",
        ["2025-10-26T00:00", "2025-10-26T00:20", "2025-10-26T00:40", "2025-10-27T01:00"],
    ),
    (
        "Europe/Paris",
        "*/20 2 * * *",
        "2025-03-29T12:00",
        ["2025-03-30T01:00", "2025-03-31T00:00", "2025-03-31T00:20"],
    ),
    # Six fields, seconds first: 02:30:15 daily.
    (
        "Europe/Paris",
        "15 30 2 * * *",
        "2026-03-28T12:00",
        ["2026-03-29T01:00", "2026-03-30T00:30:15"],
    ),
    ("Europe/Paris", "@daily", "2026-10-24T12:00", ["2026-10-24T22:00", "2026-10-25T23:00"]),
    # America/New_York: EST -5 / EDT -4; 02:00 -> 03:00 on the second Sunday
    # of March (07:00Z), 02:00 -> 01:00 on the first Sunday of November (06:00Z).
    (
        "America/New_York",
        "30 2 * * *",
        "2024-03-08T12:00",
        ["2024-03-09T07:30", "2024-03-10T07:00", "2024-03-11T06:30"],
    ),
    # 02:30 is not repeated in New York (01:00-02:00 is): plain EST.
    (
        "America/New_York",
        "30 2 * * *",
        "2024-11-01T12:00",
        ["2024-11-02T06:30", "2024-11-03T07:30"],
    ),
    (
        "America/New_York",
        "30 1 * * *",
        "2024-11-01T12:00",
        ["2024-11-02T05:30", "2024-11-03T05:30", "2024-11-04T06:30"],
    ),
    (
        "America/New_York",
        "*/30 * * * *",
        "2023-11-05T04:45",
        ["2023-11-05T05:00", "2023-11-05T05:30", "2023-11-05T07:00", "2023-11-05T07:30"],
    ),
    (
        "America/New_York",
        "*/30 * * * *",
        "2025-03-09T06:15",
        ["2025-03-09T06:30", "2025-03-09T07:00", "2025-03-09T07:30"],
    ),
    (
        "America/New_York",
        "0 9 * * 1-5",
        "2025-03-07T12:00",
        ["2025-03-07T14:00", "2025-03-10T13:00"],
    ),
    ("America/New_York", "0 0 1 * *", "2025-10-15T00:00", ["2025-11-01T04:00", "2025-12-01T05:00"]),
    # Australia/Lord_Howe: +10:30 / +11 (a 30-minute shift). 02:00 -> 01:30 on
    # the first Sunday of April (15:00Z the day before), 02:00 -> 02:30 on the
    # first Sunday of October (15:30Z the day before).
    (
        "Australia/Lord_Howe",
        "30 1 * * 0",
        "2023-03-30T00:00",
        ["2023-04-01T14:30", "2023-04-08T15:00"],
    ),
    (
        "Australia/Lord_Howe",
        "45 1 * * *",
        "2024-04-05T00:00",
        ["2024-04-05T14:45", "2024-04-06T14:45", "2024-04-07T15:15"],
    ),
    (
        "Australia/Lord_Howe",
        "15 2 * * *",
        "2024-10-04T00:00",
        ["2024-10-04T15:45", "2024-10-05T15:30", "2024-10-06T15:15"],
    ),
    (
        "Australia/Lord_Howe",
        "*/20 * * * *",
        "2025-04-05T14:15",
        ["2025-04-05T14:20", "2025-04-05T14:40", "2025-04-05T15:30", "2025-04-05T15:50"],
    ),
    (
        "Australia/Lord_Howe",
        "*/10 * * * *",
        "2025-10-04T15:15",
        ["2025-10-04T15:20", "2025-10-04T15:30", "2025-10-04T15:40"],
    ),
    # UTC: no DST at all.
    (
        "UTC",
        "*/15 * * * * *",
        "2024-02-28T23:59:50",
        ["2024-02-29T00:00:00", "2024-02-29T00:00:15"],
    ),
    ("UTC", "0 0 29 2 *", "2024-03-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00"]),
]


@pytest.mark.parametrize(("zone", "expr", "start", "expected"), TABLE)
def test_next_fire_table(zone: str, expr: str, start: str, expected: list[str]) -> None:
    rule = CronRule(expr, zone)
    got: list[int] = []
    t = ms(start)
    for _ in expected:
        nxt = rule.next_after(t)
        assert nxt is not None
        got.append(nxt)
        t = nxt
    assert got == [ms(e) for e in expected]


@pytest.mark.parametrize(("zone", "expr", "start", "expected"), TABLE)
def test_backwards_walk_agrees_with_table(
    zone: str, expr: str, start: str, expected: list[str]
) -> None:
    rule = CronRule(expr, zone)
    fires = [ms(e) for e in expected]
    for earlier, later in itertools.pairwise(fires):
        assert rule.latest_at_or_before(later) == later
        assert rule.latest_at_or_before(later - 1) == earlier
        assert rule.next_after(earlier) == later
        assert rule.next_after((earlier + later) // 2) == later


def test_second_pass_of_a_repeated_hour_does_not_fire_again() -> None:
    # 02:15 CET (second pass, 01:15Z) in Paris on 2024-10-27: 02:30 already
    # fired in the first pass (00:30Z); the next firing is 03:00 CET.
    rule = CronRule("*/30 * * * *", "Europe/Paris")
    assert rule.next_after(ms("2024-10-27T01:15")) == ms("2024-10-27T02:00")
    assert rule.latest_at_or_before(ms("2024-10-27T01:15")) == ms("2024-10-27T00:30")
    per_second = CronRule("* * * * * *", "Europe/Paris")
    assert per_second.next_after(ms("2024-10-27T01:15")) == ms("2024-10-27T02:00")
    assert per_second.latest_at_or_before(ms("2024-10-27T01:15")) == ms("2024-10-27T00:59:59")


def test_one_day_of_hourly_fires_counts_23_and_24_hours() -> None:
    rule = CronRule("0 * * * *", "Europe/Paris")
    # Local days: 2024-03-31 spans 23:00Z (30th) .. 22:00Z; 2024-10-27 spans 22:00Z .. 23:00Z.
    spring = fires_between(rule, ms("2024-03-30T23:00"), ms("2024-03-31T21:59"), 100)
    autumn = fires_between(rule, ms("2024-10-26T22:00"), ms("2024-10-27T22:59"), 100)
    assert len(spring) == 23  # 02:00 is skipped and fires at the shift with 03:00
    assert len(autumn) == 24  # 02:00 repeated, fires once; 25 real hours
    assert count_fires(rule, ms("2024-03-30T23:00"), ms("2024-03-31T22:00"), 1000) == 23


def test_wall_to_instant_rules() -> None:
    paris = get_zone("Europe/Paris")
    assert wall_to_instant(datetime(2024, 7, 1, 12, 0), paris) == ms("2024-07-01T10:00")
    assert wall_to_instant(datetime(2024, 10, 27, 2, 30), paris) == ms("2024-10-27T00:30")
    assert wall_to_instant(datetime(2024, 3, 31, 2, 30), paris) == ms("2024-03-31T01:00")
    assert instant_to_wall(ms("2024-10-27T01:30"), paris) == (datetime(2024, 10, 27, 2, 30), 1)


def test_interval_rule_and_bounds() -> None:
    rule = IntervalRule(30_000, anchor_ms=5_000)
    assert rule.next_after(5_000) == 35_000
    assert rule.next_after(4_999) == 5_000
    assert rule.latest_at_or_before(64_999) == 35_000
    assert next_fire(rule, 0, start_ms=100_000) == 125_000
    assert next_fire(rule, 100_000, end_ms=125_000) == 125_000
    assert next_fire(rule, 125_000, end_ms=125_000) is None
    assert latest_fire(rule, 200_000, start_ms=0, end_ms=100_000) == 95_000
    assert latest_fire(rule, 4_000, start_ms=0) is None
    assert count_fires(rule, 5_000, 95_001, 1000) == 4
    assert count_fires(rule, 5_000, 95_001, 3) == 4  # exact: intervals ignore the cap
    assert fires_between(rule, 5_000, 65_000, 10) == [5_000, 35_000, 65_000]


@pytest.mark.parametrize(
    "expr",
    [
        "bad",
        "* * * *",
        "* * * * * * *",
        "60 * * * *",
        "@reboot",
        "@often",
        "R * * * *",
        "H * * * *",
        "* * 32 * *",
        "",
    ],
)
def test_invalid_expressions_are_clear_errors(expr: str) -> None:
    with pytest.raises(InvalidScheduleError):
        CronRule(expr, "UTC")


def test_unknown_timezone_is_a_clear_error() -> None:
    with pytest.raises(InvalidScheduleError, match="unknown timezone"):
        CronRule("* * * * *", "Mars/Olympus_Mons")
    with pytest.raises(InvalidScheduleError):
        get_zone("../etc/passwd")


def test_names_and_aliases_are_accepted() -> None:
    assert CronRule("0 9 * JAN-MAR MON-FRI", "UTC").next_after(ms("2025-01-03T10:00")) == ms(
        "2025-01-06T09:00"
    )
    assert CronRule("  @Daily ", "UTC").expr == "@Daily"
    assert CronRule("0 0 L * *", "UTC").next_after(ms("2024-02-01T00:00")) == ms("2024-02-29T00:00")


def test_a_never_matching_expression_has_no_next_fire() -> None:
    assert CronRule("0 0 30 2 *", "UTC").next_after(ms("2024-01-01T00:00")) is None


# -- properties ------------------------------------------------------------------

ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]
EXPRS = [
    "* * * * *",
    "*/7 * * * *",
    "30 2 * * *",
    "0 * * * *",
    "15,45 1-3 * * *",
    "*/20 * * * * *",
    "0 30 1 * * 0",
    "0 0 1 * *",
    "@daily",
]
instants = st.integers(min_value=ms("2020-01-01T00:00"), max_value=ms("2030-12-31T00:00"))


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), expr=st.sampled_from(EXPRS), t=instants)
def test_cron_fire_times_are_increasing_consistent_and_fire_each_wall_time_once(
    zone: str, expr: str, t: int
) -> None:
    rule = CronRule(expr, zone)
    tz = get_zone(zone)
    first = rule.next_after(t)
    assert first is not None and first > t  # never in the past
    second = rule.next_after(first)
    assert second is not None and second > first  # strictly increasing
    assert rule.latest_at_or_before(first) == first
    previous = rule.latest_at_or_before(first - 1)
    assert previous is not None and previous <= t  # nothing skipped between t and first
    assert rule.next_after(previous) == first
    # Each wall-clock time fires at most once: fire walls strictly increase.
    assert instant_to_wall(previous, tz)[0] < instant_to_wall(first, tz)[0]
    assert instant_to_wall(first, tz)[0] < instant_to_wall(second, tz)[0]


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    expr=st.sampled_from(EXPRS),
    t=instants,
    start_off=st.integers(min_value=-10 * 86_400_000, max_value=10 * 86_400_000),
    span=st.integers(min_value=0, max_value=20 * 86_400_000),
)
def test_next_fire_respects_start_and_end(
    zone: str, expr: str, t: int, start_off: int, span: int
) -> None:
    rule = CronRule(expr, zone)
    start, end = t + start_off, t + start_off + span
    got = next_fire(rule, t, start, end)
    unbounded = rule.next_after(max(t, start - 1))
    assert unbounded is not None
    if got is None:
        assert unbounded > end
    else:
        assert got == unbounded and got > t and start <= got <= end
        later = next_fire(rule, got, start, end)
        assert later is None or later > got


@settings(max_examples=200, deadline=None)
@given(
    every=st.integers(min_value=1000, max_value=10 * 86_400_000),
    anchor=st.integers(min_value=0, max_value=ms("2030-01-01T00:00")),
    t=instants,
)
def test_interval_fire_times_are_on_the_grid_and_increasing(
    every: int, anchor: int, t: int
) -> None:
    rule = IntervalRule(every, anchor)
    first = rule.next_after(t)
    assert first > t and first - every <= t
    assert (first - anchor) % every == 0
    assert rule.latest_at_or_before(first) == first
    assert rule.next_after(first) == first + every


@settings(max_examples=300, deadline=None)
@given(utc=st.sampled_from(sorted(UTC_NAMES)), expr=st.sampled_from(EXPRS), t=instants)
def test_utc_shortcut_agrees_with_the_zone_mapping(utc: str, expr: str, t: int) -> None:
    # Rules in a UTC zone skip the wall-clock mapping; Africa/Abidjan has had
    # offset 0 and no DST since 1912, so it takes the full mapping to the
    # same answers.
    fast, full = CronRule(expr, utc), CronRule(expr, "Africa/Abidjan")
    assert list(itertools.islice(fast.iter_after(t), 5)) == list(
        itertools.islice(full.iter_after(t), 5)
    )
    assert fast.latest_at_or_before(t) == full.latest_at_or_before(t)


def test_one_rule_shared_by_threads_gives_each_the_same_answers() -> None:
    # A rule keeps parsed croniters for reuse (a pool): threads never share one.
    rule = CronRule("*/7 * * * * *", "Europe/Paris")
    starts = [1_700_000_000_000 + 1_234 * i for i in range(400)]
    expected = [(rule.next_after(s), rule.latest_at_or_before(s)) for s in starts]
    barrier = threading.Barrier(8)

    def work() -> list[tuple[int | None, int | None]]:
        barrier.wait()
        return [(rule.next_after(s), rule.latest_at_or_before(s)) for s in starts]

    with ThreadPoolExecutor(8) as pool:
        results = [f.result() for f in [pool.submit(work) for _ in range(8)]]
    assert all(r == expected for r in results)
