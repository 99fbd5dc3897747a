"""Redis Sentinel on real servers (``tests/servers.py``): every call reaches
the current master, and a failover during a drain loses no job and runs
none twice."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator

import redis
from redis.sentinel import Sentinel

from scheduler import Scheduler, Worker
from tests.helpers import running, wait_until
from tests.servers import SentinelSet


def _on(port: int, key: str) -> bool:
    with contextlib.closing(redis.Redis(port=port)) as c:
        return bool(c.exists(key))


def test_script_calls_reach_the_master_with_a_url(
    sentinel_app: Scheduler, redis_sentinel: SentinelSet
) -> None:
    @sentinel_app.task
    def noop() -> None:
        pass

    job = noop.enqueue()
    master = redis_sentinel.master_port()
    assert _on(master, sentinel_app.queue_keys("default").jobs)
    with running(sentinel_app, concurrency=1, max_block=1.0):
        assert job.result(timeout=10) is None


def test_script_calls_reach_the_master_with_a_client_object(
    redis_sentinel: SentinelSet,
) -> None:
    sentinel = Sentinel([("127.0.0.1", p) for p in redis_sentinel.sentinel_ports])
    app = Scheduler(sentinel.master_for("mymaster"), prefix="obj")
    try:

        @app.task
        def double(x: int) -> int:
            return 2 * x

        job = double.enqueue(21)
        assert _on(redis_sentinel.master_port(), app.queue_keys("default").jobs)
        with running(app, concurrency=1, max_block=1.0):
            assert job.result(timeout=10) == 42
    finally:
        app.close()


def test_script_calls_follow_the_master_after_a_failover(
    sentinel_app: Scheduler, redis_sentinel: SentinelSet
) -> None:
    """A script connection that was open to the old master reconnects to the
    new one: the old master, now a replica, answers READONLY (or closed the
    connection), and the reconnect asks the sentinels. Before the fix it
    reconnected to its last address -- the old master -- for TOPOLOGY_RETRY
    and failed ("is a slave, not the master")."""

    @sentinel_app.task
    def noop() -> None:
        pass

    first = noop.enqueue()  # the app's script connection is open to this master
    old = redis_sentinel.master_port()
    new = redis_sentinel.failover()
    assert new != old
    second = noop.enqueue()
    assert _on(new, sentinel_app.queue_keys("default").jobs)
    with running(sentinel_app, concurrency=1, max_block=1.0):
        assert first.result(timeout=10) is None
        assert second.result(timeout=10) is None


def test_failover_during_drain_loses_none(
    sentinel_app: Scheduler, redis_sentinel: SentinelSet
) -> None:
    """A forced `SENTINEL FAILOVER` mid-drain: every job succeeds with its
    result. Unlike `CLUSTER FAILOVER`, it promotes the replica without first
    stopping the master's writes, so completions the old master acknowledged
    in its last moments can be lost (asynchronous replication; observed 0-28
    writes per forced failover here, and 0-4 jobs of this drain run again):
    those jobs run again once their lease expires -- at-least-once, as
    docs/design.md ("Redis Sentinel") says. The short lease keeps that wait
    short."""
    runs: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    started = threading.Event()

    @sentinel_app.task(lease=3.0)
    def work(i: int) -> int:
        with lock:
            runs[i] += 1
            if sum(runs.values()) >= 100:
                started.set()
        return i

    n = 600
    jobs = [work.enqueue(i) for i in range(n)]
    old = redis_sentinel.master_port()
    # Right after a failover the new master may refuse writes (NOREPLICAS)
    # until a replica links; the worker retries them, but once stopped only
    # until the end of its grace period (running's join bound).
    with running(sentinel_app, concurrency=4, max_block=1.0):
        assert started.wait(30)
        new = redis_sentinel.failover()
        assert new != old
        wait_until(lambda: len(runs) == n, timeout=60, interval=0.05)
        results = [j.result(timeout=30) for j in jobs]
    assert results == list(range(n))
    assert set(runs) == set(range(n))  # each ran; a few may have run twice (above)
    assert _on(new, sentinel_app.queue_keys("default").jobs)


@contextlib.contextmanager
def _refusing_writes(port: int, replicas: int) -> Iterator[None]:
    """The master at ``port`` refuses every write (``NOREPLICAS``, as just
    after a failover before its replicas link) for the block: it asks for
    more good replicas than it has."""
    with contextlib.closing(redis.Redis(port=port)) as c:
        c.config_set("min-replicas-to-write", replicas + 1)
        try:
            yield
        finally:
            c.config_set("min-replicas-to-write", 1)


def test_a_worker_stopped_while_the_master_refuses_writes_exits_within_its_grace(
    sentinel_app: Scheduler, redis_sentinel: SentinelSet
) -> None:
    """A stop during a failover (writes refused longer than the grace period)
    ends the worker at the end of its grace period: its calls give up there
    instead of retrying for TOPOLOGY_RETRY (30 s). The job it could not
    release is not lost: its lease expires and another worker runs it."""
    started = threading.Event()
    go_on = threading.Event()

    @sentinel_app.task(lease=2.0)
    def hold() -> str:
        started.set()
        go_on.wait(30)
        return "done"

    job = hold.enqueue()
    grace = 1.0
    worker = Worker(sentinel_app, concurrency=1, max_block=1.0, grace=grace)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        with _refusing_writes(redis_sentinel.master_port(), len(redis_sentinel.data_ports) - 1):
            worker.stop()
            # Far below TOPOLOGY_RETRY: before the fix the release at the end
            # of the grace period retried NOREPLICAS for 30 s.
            thread.join(timeout=grace + 10.0)
            stuck = thread.is_alive()
    finally:
        go_on.set()
        worker.stop()
        thread.join(timeout=60)
    assert not stuck
    with running(sentinel_app, concurrency=1, max_block=0.5):
        assert job.result(timeout=30) == "done"


def _refused_writes(port: int) -> int:
    """How many commands the server at ``port`` has refused with ``NOREPLICAS``."""
    with contextlib.closing(redis.Redis(port=port)) as c:
        stats: dict[str, dict[str, int]] = c.info("errorstats")  # type: ignore[assignment]
    return int(stats.get("errorstat_NOREPLICAS", {}).get("count", 0))


def test_registry_and_wake_writes_wait_out_a_master_refusing_writes(
    sentinel_app: Scheduler, redis_sentinel: SentinelSet
) -> None:
    """The worker registry's writes and a passed-on wake-up, plain commands
    outside scripts, are retried through NOREPLICAS (a new master whose
    replicas have not linked yet) like script calls. Before the fix the
    first refusal raised: the heartbeat logged it and the entry went stale,
    a passed-on wake-up was lost."""
    backend = sentinel_app.backend
    master = redis_sentinel.master_port()
    qk = sentinel_app.queue_keys("default")
    failures: list[BaseException] = []

    def write() -> None:
        try:
            backend.publish_worker("w-retry", {"host": "h"}, time.time())
            backend.push_wake("default")
            backend.remove_worker("w-gone")
        except Exception as exc:  # reported below
            failures.append(exc)

    before = _refused_writes(master)
    thread = threading.Thread(target=write, daemon=True)
    with _refusing_writes(master, len(redis_sentinel.data_ports) - 1):
        thread.start()
        wait_until(lambda: _refused_writes(master) > before or not thread.is_alive())
        # Refused at least once (or already failed); writes are let through now.
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert failures == []
    with contextlib.closing(redis.Redis(port=master)) as c:
        assert c.zscore(sentinel_app.backend.keys.workers, "w-retry") is not None
        assert c.hget(sentinel_app.backend.keys.worker("w-retry"), "host") == b"h"
        assert c.llen(qk.wake) >= 1
