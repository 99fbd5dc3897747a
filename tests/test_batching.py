"""``app.batching()``: single enqueues buffered and written in bulk
(contract in :mod:`scheduler.batching`), on fakeredis and a real server."""

from __future__ import annotations

import threading

import pytest
import redis

from scheduler import Scheduler
from scheduler.backend.record import parse_record
from scheduler.errors import ValidationError


def stored(app: Scheduler, job_id: str, queue: str = "default") -> bool:
    return app.redis.hexists(app.queue_keys(queue).jobs, job_id) == 1


def seqs(app: Scheduler, ids: list[str]) -> list[str]:
    jobs = app.queue_keys("default").jobs
    return [parse_record(i, app.redis.hget(jobs, i) or b"").seq for i in ids]


def test_jobs_are_written_at_the_end_of_the_block_in_order(app: Scheduler) -> None:
    @app.task
    def t(x: int) -> None:
        """A task."""

    with app.batching():
        handles = [t.enqueue(i) for i in range(7)]
        assert not any(stored(app, h.id) for h in handles)
    assert all(stored(app, h.id) for h in handles)
    ids = [h.id for h in handles]
    assert seqs(app, ids) == sorted(seqs(app, ids))
    assert app.redis.zcard(app.queue_keys("default").ready) == 7


def test_a_full_buffer_is_flushed_at_once(app: Scheduler) -> None:
    @app.task
    def t() -> None:
        """A task."""

    with app.batching(max_jobs=3) as batch:
        first = [t.enqueue() for _ in range(3)]
        assert all(stored(app, h.id) for h in first)
        assert len(batch) == 0
        fourth = t.enqueue()
        assert not stored(app, fourth.id)
        assert len(batch) == 1
    assert stored(app, fourth.id)


def test_bad_input_raises_at_the_call_and_is_not_buffered(app: Scheduler) -> None:
    @app.task
    def t(x: object = None) -> None:
        """A task."""

    with app.batching() as batch:
        with pytest.raises(ValidationError):
            t.enqueue(object())
        assert len(batch) == 0
        ok = t.enqueue(1)
    assert stored(app, ok.id)
    with pytest.raises(ValidationError), app.batching(max_jobs=0):
        pass


def test_the_block_flushes_when_it_ends_with_an_exception(app: Scheduler) -> None:
    @app.task
    def t() -> None:
        """A task."""

    with pytest.raises(KeyError), app.batching():
        job = t.enqueue()
        raise KeyError("boom")
    assert stored(app, job.id)


def test_other_threads_and_an_existing_id_are_not_affected(real_app: Scheduler) -> None:
    app = real_app

    @app.task
    def t() -> None:
        """A task."""

    first = t.options(job_id="same").enqueue()
    other: list[str] = []
    with app.batching():
        again = t.options(job_id="same", priority=9).enqueue()
        thread = threading.Thread(target=lambda: other.append(t.enqueue().id))
        thread.start()
        thread.join()
        assert stored(app, other[0])  # written directly: not this thread's block
    assert again.id == first.id
    record = parse_record("same", app.redis.hget(app.queue_keys("default").jobs, "same") or b"")
    assert record.priority != 9  # left untouched


def test_a_flush_error_surfaces_at_the_end_of_the_block(app: Scheduler) -> None:
    @app.task
    def t() -> None:
        """A task."""

    app.redis.set(app.queue_keys("default").jobs, "not a hash")
    with pytest.raises(redis.ResponseError), app.batching():
        t.enqueue()
