"""Sharded pub/sub on a Redis Cluster >= 7: a queue's ``finished`` messages
(``Job.result()``) go by ``SPUBLISH`` to the master owning the queue's slot,
not to every node (``lua/lib/signals.lua``, ``Backend.subscribe_finished``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from scheduler import Scheduler
from tests.helpers import running, wait_until
from tests.servers import ClusterSet

QUEUES = [f"s{i}" for i in range(8)]


@pytest.fixture
def capp(redis_cluster: ClusterSet, request: pytest.FixtureRequest) -> Iterator[Scheduler]:
    prefix = "p" + str(abs(hash(request.node.name)) % 10**8)
    app = Scheduler.from_url(redis_cluster.url, prefix=prefix)
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


def test_result_wakes_by_sharded_message_on_every_master(capp: Scheduler) -> None:
    client: Any = capp.redis
    assert len({client.get_node_from_key(capp.queue_keys(q).jobs).name for q in QUEUES}) == 3
    tasks = {}
    for q in QUEUES:

        @capp.task(queue=q, name=f"echo_{q}")
        def echo(x: str) -> str:
            return x

        tasks[q] = echo
    jobs = {q: tasks[q].enqueue(q) for q in QUEUES}
    results: dict[str, Any] = {}

    def wait(q: str) -> None:
        results[q] = jobs[q].result(timeout=60)

    threads = [threading.Thread(target=wait, args=(q,)) for q in QUEUES]
    for t in threads:
        t.start()
    # Every waiter holds a shard subscription on its queue's master.
    wait_until(lambda: all(_shard_subscribers(capp, q) == 1 for q in QUEUES))
    with running(capp, queues=QUEUES, concurrency=2, max_block=1.0):
        for t in threads:
            t.join(timeout=60)
    assert results == {q: q for q in QUEUES}


def test_finished_message_reaches_the_shard_subscriber(capp: Scheduler) -> None:
    backend = capp.backend
    for q in QUEUES:

        @capp.task(queue=q, name=f"noop_{q}")
        def noop() -> None:
            return None

        job = noop.enqueue()
        with backend.subscribe_finished(q, 10.0) as sub:
            job.cancel()
            got = None
            for _ in range(5):
                got = sub.get(timeout=10.0)
                if got is not None:
                    break
            assert got == job.id


def test_cron_channel_stays_plain_and_reaches_the_runner(capp: Scheduler) -> None:
    # The schedule channel is cross-queue (one channel, any queue's script
    # publishes on it): plain PUBLISH, which a cluster forwards to every node.
    channel = capp.backend.keys.schedules_channel
    with capp.backend.subscribe([channel], 10.0) as sub:
        capp.backend.publish(channel, "x")
        got = None
        for _ in range(5):
            got = sub.get(timeout=10.0)
            if got is not None:
                break
        assert got == "x"
