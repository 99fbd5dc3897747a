"""Pure scheduling math: the priority formula, scores, members, backoff."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import InvalidPriorityError
from scheduler.priority import (
    MAX_AGING_RATE,
    SEQ_DIGITS,
    AgingClock,
    backoff_delay,
    compact_float,
    compute_priority,
    format_seq,
    make_member,
    member_job_id,
    ready_score,
    resolve_priority,
    validate_aging_rate,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@pytest.mark.parametrize(
    ("weight", "time", "resource", "expected"),
    [(1, 1, 1, 1.0), (2, 3, 4, 1.5), (0, 5, 1, 0.0), (10, 0.5, 0.25, 20.0)],
)
def test_formula(weight: float, time: float, resource: float, expected: float) -> None:
    assert compute_priority(weight, time, resource) == expected


@pytest.mark.parametrize(
    ("weight", "time", "resource", "message"),
    [
        (-1, 1, 1, "weight must be >= 0"),
        (1, 0, 1, "time must be > 0"),
        (1, -2, 1, "time must be > 0"),
        (1, 1, 0, "resource must be > 0"),
        (math.nan, 1, 1, "weight must be finite"),
        (1, math.inf, 1, "time must be finite"),
        (1, 1, -math.inf, "resource must be finite"),
        (1e300, 1e300, 1, "priority .* must be finite"),
        (1, 1e300, 1e-300, "priority .* must be finite"),
        (True, 1, 1, "real number"),
        ("1", 1, 1, "real number"),
        (10**400, 1, 1, "too large"),
    ],
)
def test_formula_rejects(weight: object, time: object, resource: object, message: str) -> None:
    with pytest.raises(InvalidPriorityError, match=message):
        compute_priority(weight, time, resource)  # type: ignore[arg-type]


def test_explicit_priority_overrides_formula() -> None:
    assert resolve_priority(-7.5, 1, 1, 1) == (-7.5, "")
    assert resolve_priority(None, 2, 3, 4) == (1.5, "2,3,4")
    assert resolve_priority(None, 0.5, 1e20, 3) == (0.5 * 1e20 / 3, "0.5,1e+20,3")
    with pytest.raises(InvalidPriorityError):
        resolve_priority(math.inf, 1, 1, 1)


@given(finite, st.integers(min_value=0, max_value=2**45))
def test_zero_aging_score_is_exact_negation(priority: float, ready_ms: int) -> None:
    assert ready_score(priority, AgingClock().value_at(ready_ms)) == -priority


@given(
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=0, max_value=10**7),
    st.floats(min_value=1e-3, max_value=10),
    st.integers(min_value=0, max_value=10**10),
)
def test_aging_score_orders_by_effective_priority(
    p1: float, p2: float, gap_ms: int, aging: float, age_ms: int
) -> None:
    """Job 2 became ready gap_ms after job 1, on a clock running for age_ms.
    At any later time, job 1's effective priority (p1 + aging * wait1) beats
    job 2's iff its score is lower."""
    clock = AgingClock(aging, 1_700_000_000_000, 0.0)
    t1 = clock.since_ms + age_ms
    t2 = t1 + gap_ms
    s1, s2 = ready_score(p1, clock.value_at(t1)), ready_score(p2, clock.value_at(t2))
    advantage = p1 - p2 + aging * gap_ms / 1000  # effective priority difference, any time
    tolerance = 1e-9 * max(1.0, abs(s1), abs(s2))
    if advantage > tolerance:
        assert s1 < s2
    elif advantage < -tolerance:
        assert s1 > s2


@given(
    st.lists(st.tuples(st.integers(1, 10**9), st.sampled_from([0.0, 0.5, 3.0, 1e6])), max_size=8)
)
def test_aging_clock_is_continuous_and_never_decreases(changes: list[tuple[int, float]]) -> None:
    """A rate change starts a piece at A(t) of the old one: A never jumps or goes back."""
    clock, t = AgingClock(), 1_700_000_000_000
    for gap, rate in changes:
        before = clock.value_at(t + gap - 1)
        t += gap
        at = clock.value_at(t)
        clock = AgingClock(rate, t, at)
        assert before <= at == clock.value_at(t) <= clock.value_at(t + 1)


@pytest.mark.parametrize("rate", [0, 0.5, 7, MAX_AGING_RATE, -0.0])
def test_accepted_aging_rates(rate: float) -> None:
    value = validate_aging_rate(rate)
    assert value == rate and math.copysign(1.0, value) == 1.0


@pytest.mark.parametrize("rate", [-1e-9, MAX_AGING_RATE * 1.01, 1e300, math.inf, math.nan, True])
def test_refused_aging_rates(rate: float) -> None:
    with pytest.raises(InvalidPriorityError):
        validate_aging_rate(rate)


@given(st.integers(min_value=0, max_value=2**53), st.integers(min_value=0, max_value=2**53))
def test_member_byte_order_is_sequence_order(a: int, b: int) -> None:
    ma, mb = make_member(a, "x"), make_member(b, "a")
    assert (ma.encode() < mb.encode()) == (a < b) or a == b
    assert len(ma) == SEQ_DIGITS + 2
    assert member_job_id(make_member(a, "job:1")) == "job:1"


def test_backoff_grows_caps_and_jitters_within_bounds() -> None:
    rng = random.Random(7)
    no_jitter = [backoff_delay(n, 1.0, 60.0, jitter=0.0) for n in range(1, 10)]
    assert no_jitter == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    for attempt in range(1, 30):
        d = min(60.0, 2.0 ** (attempt - 1))
        value = backoff_delay(attempt, 1.0, 60.0, jitter=0.5, rng=rng)
        assert d * 0.5 <= value <= d
    assert backoff_delay(5000, 1.0, 30.0, jitter=0.0) == 30.0  # no overflow
    with pytest.raises(ValueError):
        backoff_delay(0, 1.0, 2.0)
    with pytest.raises(ValueError):
        backoff_delay(1, 3.0, 2.0)


@given(st.integers(min_value=0, max_value=62**9 - 1), st.integers(min_value=0, max_value=62**9 - 1))
def test_base62_sequence_keeps_numeric_order(a: int, b: int) -> None:
    assert (format_seq(a) < format_seq(b)) == (a < b)
    assert len(format_seq(a)) == SEQ_DIGITS


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_compact_float_is_exact(value: float) -> None:
    assert float(compact_float(value)) == value
