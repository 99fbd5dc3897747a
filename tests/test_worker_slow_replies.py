"""Start order when the waiter's lease reply is slow (issue 9, item 9).

The worker's waiter blocks in ``BLPOP`` with a lease pipelined behind it.
When a job arrives, the server runs that lease at once -- the job is leased
to this worker -- but the reply may reach the dispatcher only later (a slow
network, or the waiter thread not scheduled yet on a loaded machine). If a
running job finishes in that moment, the dispatcher reports it and fills the
freed slot; it must fill it with the best job it holds in the server,
including the one the waiter's reply has not brought yet
(``docs/design.md``: "a freed slot is filled only after the round trip that
reports the finished job has also leased"). A
:class:`tests.proxy.RespProxy` holds the waiter's reply back to make that
moment last.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from scheduler import JobState, Scheduler
from scheduler.devserver import DevServer
from tests.helpers import blocker_and_tag, running, wait_until
from tests.proxy import RespProxy, wait_blocked, waiter_lease


@pytest.fixture
def proxy(redis_server: DevServer, real_redis: redis.Redis) -> Iterator[RespProxy]:
    p = RespProxy("127.0.0.1", redis_server.port)
    try:
        yield p
    finally:
        p.release()
        p.close()


@pytest.fixture
def slow_app(proxy: RespProxy) -> Iterator[Scheduler]:
    """An app whose worker talks to the server through ``proxy``."""
    client = redis.Redis.from_url(proxy.url)
    try:
        yield Scheduler(client, prefix="t")
    finally:
        client.close()


def test_a_job_leased_by_a_slow_wait_still_starts_first(
    slow_app: Scheduler, proxy: RespProxy, real_redis: redis.Redis
) -> None:
    order: list[str] = []
    started, go = threading.Event(), threading.Event()
    app = slow_app
    direct = Scheduler(real_redis, prefix="t")  # the test's own view, not delayed

    blocker, tag = blocker_and_tag(app, started, go, order)

    blocker.enqueue()
    with running(app, concurrency=1, prefetch=3) as worker:
        assert started.wait(10)
        low = [tag.options(priority=1).enqueue(f"low{i}") for i in range(2)]
        wait_until(lambda: len(worker.snapshot()) == 3)  # both leased into the buffer
        # Waiting for more (room for 1), blocked in the server: not a wait
        # that a wake marker left over from the enqueues above answers at
        # once (a round trip may lease "low1" before the waiter takes its
        # marker), whose reply, held, would bring nothing.
        wait_until(lambda: wait_blocked(proxy, real_redis))
        assert proxy.hold_outstanding(waiter_lease) == 1
        high = tag.options(priority=9).enqueue("high")
        # The server ran the waiter's lease (BLPOP and lease replies held back).
        proxy.wait_for(lambda: proxy.holding >= 2)
        assert direct.job(high.id).status is JobState.LEASED
        go.set()  # the blocker finishes: one slot frees up
        wait_until(lambda: len(order) >= 1)
        proxy.release()  # the waiter's reply arrives late, with "high" in it
        wait_until(lambda: len(order) >= 3)
        # Waiting again: the late reply was taken.
        wait_until(lambda: proxy.outstanding(waiter_lease) == 1)
    # Stopped gracefully: whatever started has finished. "high" ran once.
    assert order == ["high", "low0", "low1"]
    assert worker.processed == 4
    assert all(direct.job(j.id).info().attempts == 1 for j in [high, *low])
    assert all(direct.job(j.id).status is JobState.SUCCEEDED for j in [high, *low])


def test_a_job_taken_ahead_is_not_run_again_by_the_waiter(
    slow_app: Scheduler, proxy: RespProxy, real_redis: redis.Redis
) -> None:
    """The waiter may start the first job of its reply itself (nothing
    buffered, a free slot); if a round trip took that job ahead while the
    reply was held back, the job runs once (issue 16 with issue 9 item 9)."""
    order: list[str] = []
    started, go = threading.Event(), threading.Event()
    app = slow_app
    direct = Scheduler(real_redis, prefix="t")

    blocker, tag = blocker_and_tag(app, started, go, order)

    blocker.enqueue()
    with running(app, concurrency=2, prefetch=0) as worker:
        assert started.wait(10)
        wait_until(lambda: wait_blocked(proxy, real_redis))  # room for 1, nothing buffered
        assert proxy.hold_outstanding(waiter_lease) == 1
        high = tag.enqueue("high")
        proxy.wait_for(lambda: proxy.holding >= 2)
        assert direct.job(high.id).status is JobState.LEASED
        go.set()  # the blocker finishes: its round trip takes "high" ahead
        wait_until(lambda: len(order) >= 1)
        proxy.release()  # the waiter's reply arrives late, with "high" in it
        wait_until(lambda: proxy.outstanding(waiter_lease) == 1)
    assert order == ["high"]
    assert worker.processed == 2
    assert direct.job(high.id).info().attempts == 1
