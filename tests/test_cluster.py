"""The full job lifecycle on a real 3-master Redis Cluster (``tests/servers.py``).

Queues are spread over the masters (their hash tags land in different slots
and nodes); every call is routed by slot, blocking waits are made per slot,
event reads per slot and merged.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

import pytest
from redis.cluster import RedisCluster

from scheduler import Backoff, JobCancelledError, JobFailedError, JobSpec, JobState, Scheduler
from scheduler.cron import CronRunner
from tests.helpers import running, wait_until
from tests.servers import ClusterSet

QUEUES = [f"q{i}" for i in range(8)]
FAST = Backoff(base=0.01, maximum=0.02)


def _owners(app: Scheduler, queues: list[str]) -> set[str]:
    client: Any = app.redis
    return {client.get_node_from_key(app.queue_keys(q).jobs).name for q in queues}


def test_queues_spread_over_every_master(cluster_app: Scheduler) -> None:
    assert isinstance(cluster_app.redis, RedisCluster)
    assert len(_owners(cluster_app, QUEUES)) == 3


def test_full_lifecycle_on_many_queues(cluster_app: Scheduler) -> None:
    ran: list[tuple[str, int]] = []
    lock = threading.Lock()

    tasks = {}
    for q in QUEUES:

        @cluster_app.task(queue=q, name=f"work_{q}")
        def work(i: int, q: str = q) -> int:
            with lock:
                ran.append((q, i))
            return i * 2

        tasks[q] = work

    @cluster_app.task(queue="q1", max_attempts=2, backoff=FAST)
    def broken() -> None:
        raise ValueError("no")

    single = [tasks[q].enqueue(i) for i, q in enumerate(QUEUES)]
    bulk = cluster_app.enqueue_many(
        [JobSpec(tasks[q], (i,)) for q in QUEUES for i in range(10, 15)]
    )
    delayed = tasks["q2"].options(delay=0.3).enqueue(100)
    parked = tasks["q3"].options(delay=3600).enqueue(101)
    cancelled = tasks["q4"].options(delay=3600).enqueue(102)
    assert cancelled.cancel()
    assert parked.reprioritize(priority=1)
    assert parked.run_now()
    cluster_app.pause("q5")
    paused = tasks["q5"].enqueue(103)
    dead = broken.enqueue()

    with running(cluster_app, queues=QUEUES, concurrency=4, max_block=2.0):
        everything = [*single, *bulk, delayed, parked]
        for job in [j for j in everything if j.queue != "q5"]:
            assert job.result(timeout=20) == job.info().args[0] * 2  # type: ignore[index]
        with pytest.raises(JobFailedError):
            dead.result(timeout=20)
        with pytest.raises(JobCancelledError):
            cancelled.result(timeout=5)
        assert paused.status is JobState.READY
        cluster_app.resume("q5")
        for job in [j for j in everything if j.queue == "q5"] + [paused]:
            assert job.result(timeout=20) == job.info().args[0] * 2  # type: ignore[index]
        assert dead.retry()
        with pytest.raises(JobFailedError):
            dead.result(timeout=20)
    assert len(ran) == len(single) + len(bulk) + 3
    assert len(set(ran)) == len(ran)  # none ran twice


def test_events_follow_merges_streams_of_every_slot(cluster_app: Scheduler) -> None:
    from scheduler.admin.events import follow_events

    for q in QUEUES:
        cluster_app.enqueue("noop", queue=q)
    stop = threading.Event()
    seen: set[str] = set()
    for event in follow_events(cluster_app.backend, QUEUES, since="0-0", block=0.5, stop=stop):
        seen.add(event.queue)
        if seen == set(QUEUES):
            stop.set()
            break
    assert seen == set(QUEUES)


def test_cron_fires_on_a_cluster(cluster_app: Scheduler) -> None:
    @cluster_app.task(queue="q6")
    def tick() -> str:
        return "tick"

    cluster_app.every(1, tick, id="ticker")
    runner = CronRunner(cluster_app, ["q6"], max_block=1.0)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: cluster_app.backend.job_set_size("q6", "ready") >= 1, timeout=10)
    finally:
        runner.stop()
        thread.join(10)


def test_admin_commands_on_a_cluster(cluster_app: Scheduler, redis_cluster: ClusterSet) -> None:
    @cluster_app.task(queue="q7")
    def dies() -> None:
        raise ValueError("x")

    job = dies.enqueue()
    base = [
        sys.executable,
        "-m",
        "scheduler",
        "--url",
        redis_cluster.url,
        "--prefix",
        cluster_app.prefix,
    ]
    for args in (
        ["status", "--json"],
        ["jobs", "list", "-q", "q7", "--json"],
        ["job", "show", job.id, "--json"],
        ["job", "cancel", job.id],
        ["retry", "-q", "q7", "-s", "cancelled", "--all"],
        ["queue", "pause", "q7"],
        ["queue", "resume", "q7"],
        ["events", "--json"],
        ["workers", "--json"],
        ["schedules", "list", "--json"],
    ):
        done = subprocess.run(
            [*base, *args], check=False, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (args, done.stderr)
    status = json.loads(
        subprocess.run(
            [*base, "status", "--json"], check=False, capture_output=True, text=True
        ).stdout
    )
    assert "q7" in json.dumps(status)


def test_time_of_a_queue_comes_from_its_master(cluster_app: Scheduler) -> None:
    client: Any = cluster_app.redis
    for q in QUEUES:
        node = client.get_node_from_key(cluster_app.queue_keys(q).jobs)
        sec, usec = client.time(target_nodes=node)
        before = int(sec) * 1000 + int(usec) // 1000
        assert 0 <= cluster_app.backend.server_time_ms(q) - before < 5000
