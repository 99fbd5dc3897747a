"""The async producer (``aenqueue``, ``aenqueue_many``, ``ajob``,
``Job.aresult``) on a real 3-master Redis Cluster and a real Sentinel set
(``tests/servers.py``), from their URLs: enqueue single, bulk and delayed
over queues on every master, results awaited on sharded pub/sub on the
cluster, a cancel, and a Sentinel failover between enqueue and result."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from scheduler import JobSpec, Scheduler
from scheduler.errors import JobCancelledError
from tests.helpers import running
from tests.servers import ClusterSet, SentinelSet

QUEUES = [f"a{i}" for i in range(6)]


def _app(url: str, request: pytest.FixtureRequest) -> Scheduler:
    return Scheduler.from_url(url, prefix="y" + str(abs(hash(request.node.name)) % 10**8))


@pytest.fixture
def capp(redis_cluster: ClusterSet, request: pytest.FixtureRequest) -> Iterator[Scheduler]:
    app = _app(redis_cluster.url, request)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def sapp(redis_sentinel: SentinelSet, request: pytest.FixtureRequest) -> Iterator[Scheduler]:
    app = _app(redis_sentinel.url, request)
    try:
        yield app
    finally:
        app.close()


def _shard_subscribers(app: Scheduler, queue: str) -> int:
    """``PUBSUB SHARDNUMSUB`` of the queue's channel on the master owning it."""
    client: Any = app.redis
    channel = app.queue_keys(queue).finished_channel
    node = client.get_node_from_key(channel)
    with redis.Redis(host=node.host, port=node.port) as direct:
        reply = direct.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])


async def _until(predicate: Any) -> None:
    """Wait (yielding to the loop) until ``predicate()`` holds."""
    for _ in range(2000):
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not met")


def test_async_producer_on_a_cluster(capp: Scheduler) -> None:
    client: Any = capp.redis
    masters = {client.get_node_from_key(capp.queue_keys(q).jobs).name for q in QUEUES}
    assert len(masters) == 3  # the queues are spread over every master
    tasks = {}
    for q in QUEUES:

        @capp.task(queue=q, name=f"twice_{q}")
        def twice(x: int) -> int:
            return 2 * x

        tasks[q] = twice

    async def produce() -> None:
        single = [await capp.aenqueue(tasks[q], [i]) for i, q in enumerate(QUEUES)]
        bulk = await capp.aenqueue_many(
            [JobSpec(tasks[q], (100 + i,)) for i, q in enumerate(QUEUES * 5)]
        )
        later = await capp.aenqueue(tasks[QUEUES[0]], [7], delay=0.5)
        doomed = await capp.aenqueue(tasks[QUEUES[1]], [8], delay=3600)
        assert (await capp.ajob(doomed.id)).queue == QUEUES[1]
        doomed.cancel()
        with pytest.raises(JobCancelledError):
            await doomed.aresult(timeout=30)
        # Subscribed before the jobs run: every result comes by a message.
        waits = [asyncio.create_task(j.aresult(timeout=60)) for j in [*single, *bulk, later]]
        await _until(lambda: all(_shard_subscribers(capp, q) >= 1 for q in QUEUES))
        with running(capp, queues=QUEUES, concurrency=4, max_block=0.5):
            results = await asyncio.gather(*waits)
        assert results == [2 * i for i in range(len(QUEUES))] + [
            2 * (100 + i) for i in range(len(QUEUES) * 5)
        ] + [14]
        await capp.aclose()

    asyncio.run(produce())


def test_async_result_arrives_by_sharded_message_on_a_cluster(capp: Scheduler) -> None:
    """``aresult`` subscribes with SSUBSCRIBE on the master owning the queue
    (the scripts SPUBLISH there): a plain SUBSCRIBE would get nothing and
    the wait would end only at its 30 s re-read."""

    @capp.task(queue=QUEUES[2])
    def echo(x: str) -> str:
        return x

    async def go() -> str:
        job = await capp.aenqueue(echo, ["hi"])
        assert _shard_subscribers(capp, QUEUES[2]) == 0
        wait = asyncio.create_task(job.aresult())
        await _until(lambda: _shard_subscribers(capp, QUEUES[2]) == 1)
        with running(capp, queues=[QUEUES[2]], concurrency=1, max_block=0.5):
            # Far below the 30 s re-read: only the message can end it here.
            result = await asyncio.wait_for(wait, timeout=20)
        await capp.aclose()
        return result

    assert asyncio.run(go()) == "hi"


def test_async_producer_survives_a_sentinel_failover(
    sapp: Scheduler, redis_sentinel: SentinelSet
) -> None:
    @sapp.task
    def add(a: int, b: int) -> int:
        return a + b

    async def go() -> list[Any]:
        before = await sapp.aenqueue(add, [1, 2])
        many = await sapp.aenqueue_many([JobSpec(add, (i, i)) for i in range(20)])
        old = redis_sentinel.master_port()
        new = await asyncio.to_thread(redis_sentinel.failover)
        assert new != old
        # Right after the failover: retried through NOREPLICAS / READONLY.
        after = await sapp.aenqueue(add, [3, 4])
        delayed = await sapp.aenqueue(add, [5, 6], delay=0.5)
        with running(sapp, concurrency=2, max_block=0.5):
            results = [await j.aresult(timeout=60) for j in [before, *many, after, delayed]]
        await sapp.aclose()
        return results

    assert asyncio.run(go()) == [3, *[2 * i for i in range(20)], 7, 11]
