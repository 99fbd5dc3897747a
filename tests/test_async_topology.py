"""The async producer (``aenqueue``, ``aenqueue_many``, ``ajob``,
``Job.aresult``) on a real 3-master Redis Cluster and a real Sentinel set
(``tests/servers.py``), from their URLs: enqueue single, bulk and delayed
over queues on every master, results awaited on sharded pub/sub on the
cluster, a cancel, and a Sentinel failover between enqueue and result."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scheduler import JobSpec, Scheduler
from scheduler.errors import JobCancelledError
from tests.helpers import running, shard_subscribers
from tests.servers import SentinelSet

QUEUES = [f"a{i}" for i in range(6)]


async def _until(predicate: Any) -> None:
    """Wait (yielding to the loop) until ``predicate()`` holds."""
    for _ in range(2000):
        if await asyncio.to_thread(predicate):
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not met")


def test_async_producer_on_a_cluster(cluster_app: Scheduler) -> None:
    client: Any = cluster_app.redis
    masters = {client.get_node_from_key(cluster_app.queue_keys(q).jobs).name for q in QUEUES}
    assert len(masters) == 3  # the queues are spread over every master
    tasks = {}
    for q in QUEUES:

        @cluster_app.task(queue=q, name=f"twice_{q}")
        def twice(x: int) -> int:
            return 2 * x

        tasks[q] = twice

    async def produce() -> None:
        single = [await cluster_app.aenqueue(tasks[q], [i]) for i, q in enumerate(QUEUES)]
        bulk = await cluster_app.aenqueue_many(
            [JobSpec(tasks[q], (100 + i,)) for i, q in enumerate(QUEUES * 5)]
        )
        later = await cluster_app.aenqueue(tasks[QUEUES[0]], [7], delay=0.5)
        doomed = await cluster_app.aenqueue(tasks[QUEUES[1]], [8], delay=3600)
        assert (await cluster_app.ajob(doomed.id)).queue == QUEUES[1]
        doomed.cancel()
        with pytest.raises(JobCancelledError):
            await doomed.aresult(timeout=30)
        # Subscribed before the jobs run: every result comes by a message.
        waits = [asyncio.create_task(j.aresult(timeout=60)) for j in [*single, *bulk, later]]
        await _until(lambda: all(shard_subscribers(cluster_app, q) >= 1 for q in QUEUES))
        with running(cluster_app, queues=QUEUES, concurrency=4, max_block=0.5):
            results = await asyncio.gather(*waits)
        assert results == [2 * i for i in range(len(QUEUES))] + [
            2 * (100 + i) for i in range(len(QUEUES) * 5)
        ] + [14]
        await cluster_app.aclose()

    asyncio.run(produce())


def test_async_result_arrives_by_sharded_message_on_a_cluster(cluster_app: Scheduler) -> None:
    """``aresult`` subscribes with SSUBSCRIBE on the master owning the queue
    (the scripts SPUBLISH there): a plain SUBSCRIBE would get nothing and
    the wait would end only at its 30 s re-read."""

    @cluster_app.task(queue=QUEUES[2])
    def echo(x: str) -> str:
        return x

    async def go() -> str:
        job = await cluster_app.aenqueue(echo, ["hi"])
        assert shard_subscribers(cluster_app, QUEUES[2]) == 0
        wait = asyncio.create_task(job.aresult())
        await _until(lambda: shard_subscribers(cluster_app, QUEUES[2]) == 1)
        with running(cluster_app, queues=[QUEUES[2]], concurrency=1, max_block=0.5):
            # Far below the 30 s re-read: only the message can end it here.
            result = await asyncio.wait_for(wait, timeout=20)
        await cluster_app.aclose()
        return result

    assert asyncio.run(go()) == "hi"


def test_async_producer_survives_a_sentinel_failover(
    sentinel_app: Scheduler, redis_sentinel: SentinelSet
) -> None:
    @sentinel_app.task
    def add(a: int, b: int) -> int:
        return a + b

    async def go() -> list[Any]:
        before = await sentinel_app.aenqueue(add, [1, 2])
        many = await sentinel_app.aenqueue_many([JobSpec(add, (i, i)) for i in range(20)])
        old = redis_sentinel.master_port()
        new = await asyncio.to_thread(redis_sentinel.failover)
        assert new != old
        # Right after the failover: retried through NOREPLICAS / READONLY.
        after = await sentinel_app.aenqueue(add, [3, 4])
        delayed = await sentinel_app.aenqueue(add, [5, 6], delay=0.5)
        with running(sentinel_app, concurrency=2, max_block=0.5):
            results = [await j.aresult(timeout=60) for j in [before, *many, after, delayed]]
        await sentinel_app.aclose()
        return results

    assert asyncio.run(go()) == [3, *[2 * i for i in range(20)], 7, 11]
