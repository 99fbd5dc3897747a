"""Sharded pub/sub on a Redis Cluster >= 7: a queue's ``finished`` messages
(``Job.result()``) go by ``SPUBLISH`` to the master owning the queue's slot,
not to every node (``lua/lib/signals.lua``, ``Backend.subscribe_finished``)."""

from __future__ import annotations

import threading
from typing import Any

from scheduler import Scheduler
from tests.helpers import running, shard_subscribers, wait_until

QUEUES = [f"s{i}" for i in range(8)]


def test_result_wakes_by_sharded_message_on_every_master(cluster_app: Scheduler) -> None:
    client: Any = cluster_app.redis
    assert len({client.get_node_from_key(cluster_app.queue_keys(q).jobs).name for q in QUEUES}) == 3
    tasks = {}
    for q in QUEUES:

        @cluster_app.task(queue=q, name=f"echo_{q}")
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
    wait_until(lambda: all(shard_subscribers(cluster_app, q) == 1 for q in QUEUES))
    with running(cluster_app, queues=QUEUES, concurrency=2, max_block=1.0):
        for t in threads:
            t.join(timeout=60)
    assert results == {q: q for q in QUEUES}


def test_finished_message_reaches_the_shard_subscriber(cluster_app: Scheduler) -> None:
    backend = cluster_app.backend
    for q in QUEUES:

        @cluster_app.task(queue=q, name=f"noop_{q}")
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


def test_cron_channel_stays_plain_and_reaches_the_runner(cluster_app: Scheduler) -> None:
    # The schedule channel is cross-queue (one channel, any queue's script
    # publishes on it): plain PUBLISH, which a cluster forwards to every node.
    channel = cluster_app.backend.keys.schedules_channel
    with cluster_app.backend.subscribe([channel], 10.0) as sub:
        cluster_app.backend.publish(channel, "x")
        got = None
        for _ in range(5):
            got = sub.get(timeout=10.0)
            if got is not None:
                break
        assert got == "x"
