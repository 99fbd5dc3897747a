"""The worker's book (scheduler.worker.book): start order and single holding."""

from __future__ import annotations

from scheduler.backend.record import FIELDS, SEP, VERSION, JobOptions
from scheduler.priority import format_seq
from scheduler.worker.book import JobBook


def record(seq: int, priority: float, ready_ms: int, token: int, aged: float = 0.0) -> str:
    values = dict.fromkeys(FIELDS, "")
    values.update(
        version=VERSION,
        state="L",
        attempts="1",
        seq=format_seq(seq),
        token=str(token),
        worker="w",
        enqueued_ms="1000",
        ready_ms=str(ready_ms),
        priority=repr(priority),
        options=JobOptions(3, 1000, 10, -1).encode(),
        task="m:f",
        payload="[[],{}]",
        aged=repr(aged) if aged else "",
    )
    return SEP.join(values[name] for name in FIELDS)


def test_buffer_starts_by_aged_score_then_sequence_across_leases() -> None:
    """Issue 9 item 9: with aging 1/s, a priority-1 job ready 100 s earlier
    (aging stamp 100 vs 200) beats a priority-50 job; equal scores start in
    enqueue order, whatever the lease they came in."""
    book = JobBook(["q"])
    book.add("q", "new-high", record(3, 50.0, 200_000, token=10, aged=200.0))
    book.add("q", "old-low", record(1, 1.0, 100_000, token=11, aged=100.0))
    book.add("q", "tie-late", record(5, 50.0, 200_000, token=12, aged=200.0))
    book.add("q", "tie-early", record(4, 50.0, 200_000, token=13, aged=200.0))
    started = book.start_next(4)
    assert [j.id for j in started] == ["old-low", "new-high", "tie-early", "tie-late"]
    assert book.take_starts() == started


def test_queue_rank_comes_first() -> None:
    book = JobBook(["a", "b"])
    book.add("b", "b-high", record(1, 99.0, 0, token=1))
    book.add("a", "a-low", record(2, 1.0, 0, token=2))
    assert [j.id for j in book.start_next(2)] == ["a-low", "b-high"]


def test_a_lease_is_held_once() -> None:
    """Issue 9 item 2: a repeated lease reply adds nothing (and never makes
    the heap compare jobs); a newer lease of the job replaces the old one."""
    book = JobBook(["q"])
    first = book.add("q", "j", record(1, 5.0, 0, token=7))
    assert first is not None
    assert book.add("q", "j", record(1, 5.0, 0, token=7)) is None
    assert len(book) == 1 and book.active == 1
    newer = book.add("q", "j", record(1, 5.0, 0, token=9))
    assert newer is not None and first.lost and book.holds(newer)
    assert book.start_next(5) == [newer] and len(book) == 1


def test_starts_wait_briefly_for_an_outcome_to_travel_with() -> None:
    """Owed starts go at once when an outcome is owed or nothing started is
    still running; else they wait at most ``wait`` from the oldest start."""
    from scheduler.worker.execution import Outcome

    book = JobBook(["q"])
    for i in range(3):
        book.add("q", f"j{i}", record(i + 1, 0.0, 1000, i + 1))
    assert not book.reports_due(0.0, 0.001) and book.reports_due_at(0.001) is None
    started = book.start_next(2)
    first = book.reports_due_at(0.001)
    assert first is not None
    assert not book.reports_due(first - 0.0005, 0.001)  # running: wait for an outcome
    assert book.reports_due(first, 0.001)  # waited long enough
    book.finished(started[0], Outcome(ok=True, text="null"))
    assert book.reports_due(first - 0.0005, 0.001)  # an outcome to travel with
    taken = book.take_starts()
    assert taken == started and book.reports_due_at(0.001) is None
    book.restore_starts(taken)  # a failed round trip: owed again, due at once
    book.take_pending()
    assert book.reports_due(0.0, 0.001)
