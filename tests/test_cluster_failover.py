"""A cluster master fails over (``CLUSTER FAILOVER`` on its replica) while
workers drain a queue it owns: no job is lost, none runs twice.

A dedicated cluster: three masters with one replica each, every node with
``min-replicas-to-write 1`` (see ``docs/operating.md``, "Running on Redis
Cluster").
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from scheduler import Scheduler
from tests.helpers import running, wait_until
from tests.servers import ClusterSet

SAFETY = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")


@pytest.fixture(scope="module")
def replicated_cluster() -> Iterator[ClusterSet]:
    cluster = ClusterSet(replicas=1, args=SAFETY).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _role(port: int) -> str:
    with contextlib.closing(redis.Redis(port=port, socket_timeout=5)) as c:
        role = c.execute_command("ROLE")
    name = role[0]
    return name.decode() if isinstance(name, bytes) else str(name)


def test_master_failover_during_drain_loses_none_and_runs_none_twice(
    replicated_cluster: ClusterSet,
) -> None:
    app = Scheduler.from_url(replicated_cluster.url, prefix="fo")
    queue = "failing-over"
    runs: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    started, failed_over = threading.Event(), threading.Event()

    @app.task(queue=queue)
    def work(i: int) -> int:
        with lock:
            runs[i] += 1
            if sum(runs.values()) >= 50:
                started.set()
        if started.is_set():
            # Jobs in flight through the failover: their completions (and
            # the leases behind them) land on the promoted replica.
            failed_over.wait(30)
        return i

    try:
        n = 600
        jobs = [work.enqueue(i) for i in range(n)]
        client: Any = app.redis
        master = client.get_node_from_key(app.queue_keys(queue).jobs).port
        (replica,) = replicated_cluster.replicas[master]
        with running(app, queues=[queue, "other"], concurrency=4, max_block=1.0):
            assert started.wait(30)
            with contextlib.closing(redis.Redis(port=replica, socket_timeout=10)) as c:
                c.execute_command("CLUSTER", "FAILOVER")
            wait_until(lambda: _role(replica) == "master" and _role(master) == "slave", 30)
            failed_over.set()
            wait_until(lambda: len(runs) == n, timeout=90, interval=0.05)
            results = [j.result(timeout=30) for j in jobs]
        assert results == list(range(n))
        assert sum(runs.values()) == n, [i for i, c in runs.items() if c > 1][:10]
        assert sum(runs.values()) - len(runs) == 0  # duplicated runs
    finally:
        app.close()
