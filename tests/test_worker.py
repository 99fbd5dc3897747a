"""The worker in-process (thread pool), on fakeredis and on a real Redis server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest
import redis

from scheduler import (
    Backoff,
    JobCancelledError,
    JobFailedError,
    JobState,
    Scheduler,
    Worker,
    defaults,
)
from scheduler.backend.scripts import EnqueueItem
from tests.helpers import blocker_and_tag, running, wait_until

FAST = Backoff(base=0.01, maximum=0.02)


def test_runs_jobs_and_logs_each_state_change(
    app: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    caplog.set_level(logging.DEBUG, logger="scheduler.worker")
    jobs = [add.enqueue(i, i) for i in range(5)]
    with running(app, concurrency=3):
        assert [j.result(timeout=10) for j in jobs] == [0, 2, 4, 6, 8]
    info = jobs[0].info()
    assert info.state is JobState.SUCCEEDED and info.attempts == 1 and info.worker
    records = [r for r in caplog.records if jobs[0].id in r.getMessage()]
    started = [r for r in records if "started" in r.getMessage()]
    assert [r.levelno for r in started] == [logging.DEBUG]  # at most one INFO line per job
    assert (
        f"attempt=1/{defaults.MAX_ATTEMPTS}" in started[0].getMessage()
        and add.name in started[0].getMessage()
    )
    done = [r for r in records if r.levelno >= logging.INFO]
    assert len(done) == 1 and "succeeded in" in done[0].getMessage()
    assert "queue=default" in done[0].getMessage()


def test_failure_retries_with_backoff_then_dead_with_traceback(app: Scheduler) -> None:
    calls: list[float] = []

    @app.task(max_attempts=3, backoff=FAST)
    def flaky() -> None:
        calls.append(time.monotonic())
        raise ValueError("broken input")

    job = flaky.enqueue()
    with running(app, concurrency=1), pytest.raises(JobFailedError) as err:
        job.result(timeout=10)
    assert len(calls) == 3
    assert "ValueError: broken input" in err.value.error
    assert 'raise ValueError("broken input")' in err.value.traceback
    info = job.info()
    assert info.state is JobState.DEAD and info.attempts == 3
    assert info.error is not None and info.error["attempt"] == 3


def test_exception_outside_retry_on_goes_dead_at_once(app: Scheduler) -> None:
    @app.task(max_attempts=5, retry_on=(TimeoutError,))
    def strict() -> None:
        raise KeyError("nope")

    job = strict.enqueue()
    with running(app), pytest.raises(JobFailedError, match="KeyError"):
        job.result(timeout=10)
    assert job.info().attempts == 1


def test_unknown_task_fails_then_dead_with_reason(app: Scheduler) -> None:
    app.backoff = FAST
    job = app.enqueue("not.registered:task", max_attempts=2)
    with running(app), pytest.raises(JobFailedError, match="not registered"):
        job.result(timeout=10)
    assert job.info().attempts == 2


def test_undecodable_payload_goes_dead_with_reason(app: Scheduler) -> None:
    @app.task
    def f() -> None: ...

    qk = app.queue_keys("default")
    app.scripts.enqueue(
        qk, [EnqueueItem("bad", f.name, "{not json", "1.0", "", "3,60000,60000,-1")]
    )
    job = app.job("bad", queue="default")
    with running(app), pytest.raises(JobFailedError, match="payload is not valid JSON"):
        job.result(timeout=10)
    assert job.info().attempts == 1  # permanent: no retry


def test_non_json_result_goes_dead(app: Scheduler) -> None:
    @app.task
    def returns_object() -> object:
        return object()

    job = returns_object.enqueue()
    with running(app), pytest.raises(JobFailedError, match="not JSON-serializable"):
        job.result(timeout=10)


def test_async_task(app: Scheduler) -> None:
    @app.task
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    job = later.enqueue(1)
    with running(app):
        assert job.result(timeout=10) == 2


def test_heartbeat_keeps_a_long_job_leased(app: Scheduler) -> None:
    release = threading.Event()

    @app.task(lease=0.3)
    def slow() -> str:
        release.wait(10)
        return "done"

    job = slow.enqueue()
    with running(app):
        wait_until(lambda: job.status is JobState.LEASED)
        deadline = job.info().lease_deadline
        # Three lease durations later it is still the same lease, extended.
        wait_until(lambda: (job.info().lease_deadline or deadline) > deadline, timeout=5)  # type: ignore[operator]
        time.sleep(0.9)
        assert job.status is JobState.LEASED and job.info().attempts == 1
        release.set()
        assert job.result(timeout=10) == "done"
    assert job.info().attempts == 1


def test_cancelled_running_job_result_is_refused(
    app: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    started, release = threading.Event(), threading.Event()

    @app.task
    def blocker() -> int:
        started.set()
        release.wait(10)
        return 1

    caplog.set_level(logging.WARNING, logger="scheduler.worker")
    job = blocker.enqueue()
    with running(app):
        assert started.wait(10)
        assert job.cancel("operator said so")
        release.set()
        wait_until(lambda: any("refused" in r.getMessage() for r in caplog.records))
    assert job.status is JobState.CANCELLED
    with pytest.raises(JobCancelledError, match="operator said so"):
        job.result(timeout=0)


def test_graceful_shutdown_finishes_short_and_releases_long_jobs(app: Scheduler) -> None:
    started = threading.Semaphore(0)
    never = threading.Event()

    @app.task
    def quick() -> str:
        started.release()
        time.sleep(0.05)
        return "ok"

    @app.task
    def endless() -> None:
        started.release()
        never.wait(30)

    q = quick.enqueue()
    e = endless.enqueue()
    worker = Worker(app, concurrency=2, grace=0.5)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert started.acquire(timeout=10) and started.acquire(timeout=10)
    worker.stop()
    thread.join(timeout=10)
    never.set()
    assert not thread.is_alive()
    assert q.status is JobState.SUCCEEDED
    info = e.info()
    assert info.state is JobState.READY and info.attempts == 0  # released, attempt not lost


def test_idle_worker_wakes_for_new_and_delayed_jobs(app: Scheduler) -> None:
    @app.task
    def now() -> float:
        return time.time()

    with running(app, max_block=30.0) as worker:
        wait_until(
            lambda: worker.processed == 0 and app.redis.exists(app.keys.worker(worker.worker_id))
        )
        # A blocked worker (30 s block) must start new work long before that.
        t0 = time.time()
        assert now.enqueue().result(timeout=10) - t0 < 5
        delayed = now.options(delay=0.4).enqueue()
        started = delayed.result(timeout=10)
        assert started >= delayed.info().ready_at.timestamp() - 0.002


def test_strict_queue_order(app: Scheduler) -> None:
    order: list[str] = []

    @app.task
    def tag(name: str) -> None:
        order.append(name)

    for i in range(5):
        tag.options(queue="low").enqueue(f"low{i}")
        tag.options(queue="high").enqueue(f"high{i}")
    with running(app, queues=["high", "low"], concurrency=1):
        wait_until(lambda: len(order) == 10)
    assert order == [f"high{i}" for i in range(5)] + [f"low{i}" for i in range(5)]


def test_weighted_queue_order_serves_both(app: Scheduler) -> None:
    order: list[str] = []

    @app.task
    def tag(name: str) -> None:
        order.append(name)

    for _ in range(30):
        tag.options(queue="a").enqueue("a")
        tag.options(queue="b").enqueue("b")
    with running(
        app,
        queues=["a", "b"],
        concurrency=1,
        queue_order="weighted",
        queue_weights={"a": 1, "b": 1},
    ):
        wait_until(lambda: len(order) == 60)
    # With equal weights, 30 "a" before any "b" has probability 2**-30.
    assert order[:30].count("b") > 0 and order[:30].count("a") > 0


def test_paused_queue_is_not_leased_until_resumed(app: Scheduler) -> None:
    @app.task
    def f() -> int:
        return 7

    app.pause("default")
    job = f.enqueue()
    with running(app) as worker:
        wait_until(lambda: app.redis.exists(app.keys.worker(worker.worker_id)))
        assert job.status is JobState.READY
        app.resume("default")
        assert job.result(timeout=10) == 7


def test_worker_registers_and_deregisters(app: Scheduler, client: redis.Redis) -> None:
    with running(app, queues=["x", "y"], concurrency=4) as worker:
        key = app.keys.worker(worker.worker_id)
        wait_until(lambda: client.exists(key))
        fields = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        assert fields["queues"] == "x,y" and fields["concurrency"] == "4"
        assert client.ttl(key) > 0  # dead workers disappear on their own
    assert not client.exists(key)
    assert client.zscore(app.keys.workers, worker.worker_id) is None


def test_a_stopped_worker_leaves_no_blocked_lease_behind(app: Scheduler) -> None:
    """The idle waiter's lease is pipelined behind its BLPOP; stopping must cut
    both, so a job enqueued afterwards stays ready for the next worker."""

    @app.task
    def f() -> int:
        return 1

    with running(app) as worker:
        wait_until(lambda: app.redis.exists(app.keys.worker(worker.worker_id)))
    job = f.enqueue()
    assert job.status is JobState.READY
    with running(app):
        assert job.result(timeout=10) == 1
    assert job.info().attempts == 1


def test_prefetched_jobs_are_released_at_once_on_stop(app: Scheduler) -> None:
    started, never = threading.Event(), threading.Event()

    @app.task
    def hold() -> None:
        started.set()
        never.wait(30)

    jobs = [hold.enqueue() for _ in range(4)]
    worker = Worker(app, concurrency=1, prefetch=3, grace=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert started.wait(10)
    wait_until(lambda: sum(j.status is JobState.LEASED for j in jobs) == 4)  # 1 running, 3 buffered
    worker.stop()
    thread.join(timeout=10)
    never.set()
    states = [j.info() for j in jobs]
    assert all(i.state is JobState.READY and i.attempts == 0 for i in states)


def test_prefetched_jobs_start_by_priority(app: Scheduler) -> None:
    order: list[str] = []
    started, go = threading.Event(), threading.Event()

    blocker, tag = blocker_and_tag(app, started, go, order)

    blocker.enqueue()
    with running(app, concurrency=1, prefetch=3) as worker:
        assert started.wait(10)
        low = [tag.options(priority=1).enqueue(f"low{i}") for i in range(2)]
        wait_until(lambda: len(worker.snapshot()) == 3)  # both leased into the buffer
        high = tag.options(priority=9).enqueue("high")
        wait_until(lambda: high.status is JobState.LEASED)  # leased after the low ones
        go.set()
        wait_until(lambda: len(order) == 3)
    assert order == ["high", "low0", "low1"]
    assert all(j.status is JobState.SUCCEEDED for j in low)


def test_high_priority_job_arriving_while_the_buffer_is_full_starts_first(
    app: Scheduler,
) -> None:
    """Issue 9 item 9: the worker leases before it starts a buffered job, and
    starts the best of the buffer and the new leases."""
    order: list[str] = []
    started, go = threading.Event(), threading.Event()

    blocker, tag = blocker_and_tag(app, started, go, order)

    blocker.enqueue()
    with running(app, concurrency=1, prefetch=2) as worker:
        assert started.wait(10)
        low = [tag.options(priority=1).enqueue(f"low{i}") for i in range(2)]
        wait_until(lambda: len(worker.snapshot()) == 3)  # the buffer is full
        high = tag.options(priority=9).enqueue("high")
        assert high.status is JobState.READY  # no room: not leased yet
        go.set()
        wait_until(lambda: len(order) == 3)
    assert order == ["high", "low0", "low1"]
    assert all(j.status is JobState.SUCCEEDED for j in low)


def test_a_queue_never_used_and_named_by_no_task_is_warned_about(
    app: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """`--queues meda` (a typo of `media`) is served, with one WARNING naming
    it; a queue a task names, or one already used, is not warned about."""

    @app.task(queue="media")
    def resize() -> str:
        return "ok"

    app.enqueue("elsewhere.task", queue="used")  # registers "used"
    caplog.set_level(logging.WARNING, logger="scheduler.worker")
    job = resize.enqueue()
    with running(app, queues=["media", "used", "meda"]):
        assert job.result(timeout=10) == "ok"
    warned = [r.getMessage() for r in caplog.records if "never used" in r.getMessage()]
    assert len(warned) == 1 and "'meda'" in warned[0], warned
    assert "meda" in app.backend.queue_names()  # served all the same
