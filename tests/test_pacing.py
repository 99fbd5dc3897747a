"""The worker's pacing (scheduler.worker.pacing): pure, no Redis, no sleeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.worker.pacing import Pacing


def test_every_queue_starts_due() -> None:
    p = Pacing(["a", "b"], max_block=30)
    assert p.due(0.0) == ["a", "b"] and p.block_for(0.0) == 0


def test_each_queue_keeps_its_own_wake_time_whatever_its_position() -> None:
    """Issue 9 item 1: the first queue's answer never replaces the others'."""
    p = Pacing(["a", "b"], max_block=30)
    p.leased("b", 100.0, asked=4, got=0, wake_ms=45_000)  # a delayed job in b, 45 s
    p.leased("a", 100.0, asked=4, got=0, wake_ms=-1)  # nothing pending in a
    assert p.due(100.0) == []
    assert p.next_due() == 130.0  # both capped by max_block: a look every 30 s
    p.leased("b", 130.0, asked=4, got=0, wake_ms=15_000)  # b re-asked: 15 s left
    p.leased("a", 130.0, asked=4, got=0, wake_ms=-1)
    assert p.next_due() == 145.0 and p.due(145.0) == ["b"]
    assert p.block_for(140.0) == 5.0


def test_a_lease_deadline_bounds_the_block() -> None:
    """Issue 9 item 5: an idle worker wakes at the earliest lease deadline."""
    p = Pacing(["q"], max_block=30)
    p.leased("q", 10.0, asked=1, got=0, wake_ms=2_000)
    assert p.block_for(10.0) == 2.0 and p.due(12.0) == ["q"]


def test_a_full_or_unasked_lease_leaves_the_queue_due() -> None:
    p = Pacing(["a", "b"], max_block=30)
    p.leased("a", 5.0, asked=3, got=3, wake_ms=0)  # filled: maybe more
    p.leased("b", 5.0, asked=3, got=1, wake_ms=0)  # more already due
    assert p.due(5.0) == ["a", "b"]


def test_maintenance_only_call_uses_the_reported_time() -> None:
    p = Pacing(["a"], max_block=30)
    p.leased("a", 5.0, asked=0, got=0, wake_ms=1_000)
    assert p.due(5.0) == [] and p.next_due() == 6.0


def test_a_marker_makes_its_queue_due_and_an_unknown_one_all() -> None:
    p = Pacing(["a", "b"], max_block=30)
    for q in ("a", "b"):
        p.leased(q, 0.0, asked=1, got=0, wake_ms=-1)
    p.woken("b", 1.0)
    assert p.due(1.0) == ["b"]
    p.woken("elsewhere", 1.0)  # not served here: ignored
    p.woken(None, 2.0)
    assert p.due(2.0) == ["a", "b"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Pacing([], max_block=1)
    with pytest.raises(ValueError):
        Pacing(["a"], max_block=0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 5),
            st.integers(0, 5),
            st.integers(-1, 100_000),
        ),
        max_size=30,
    )
)
def test_block_is_bounded_by_every_queues_reported_time(
    replies: list[tuple[str, int, int, int]],
) -> None:
    """Model: the block never outlasts max_block nor any queue's wake time."""
    p = Pacing(["a", "b", "c"], max_block=30)
    model = {"a": 0.0, "b": 0.0, "c": 0.0}
    for q, asked, got, wake_ms in replies:
        p.leased(q, 0.0, asked, got, wake_ms)
        if (asked > 0 and got >= asked) or wake_ms == 0:
            model[q] = 0.0
        else:
            model[q] = 30.0 if wake_ms < 0 else min(wake_ms / 1000, 30.0)
    assert p.block_for(0.0) == min(model.values())
    assert p.due(0.0) == [q for q in "abc" if model[q] == 0.0]


def test_a_filled_lease_is_due_again_only_for_room() -> None:
    """A full worker makes no maintenance-only call after each full lease
    (docs/benchmarks.md, "Drain after the worker and safety changes"); with
    room it asks again at once; without, a look within max_block."""
    p = Pacing(["a", "b"], max_block=30)
    p.leased("a", 5.0, asked=3, got=3, wake_ms=0)  # filled: maybe more
    p.leased("b", 5.0, asked=3, got=1, wake_ms=0)  # more already due: maintenance now
    assert p.due(5.0) == ["a", "b"]
    assert p.due(5.0, room=False) == ["b"]
    p.leased("b", 5.0, asked=0, got=0, wake_ms=2_000)
    assert p.due(5.0, room=False) == [] and p.next_due(room=False) == 7.0
    assert p.due(35.0, room=False) == ["a", "b"]  # max_block: looked at anyway
    p.woken("a", 6.0)  # a marker: due whatever the room
    assert p.due(6.0, room=False) == ["a"]
    p.leased("a", 6.0, asked=3, got=1, wake_ms=4_000)  # not filled: its time
    assert p.due(6.0) == [] and p.next_due() == 7.0
