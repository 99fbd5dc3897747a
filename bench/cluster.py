"""Cluster scenario: drain 8 queues on a 3-master Redis Cluster vs one server.

Run from the repository root::

    .venv/bin/python -m bench.cluster --n 2000 --concurrency 16
    .venv/bin/python -m bench.cluster --only latency   # wake-up latency only

The suite (``bash bench/run.sh``, scenario ``cluster``) runs :func:`trial`
instead: ``ours`` on the suite's server alternated with ``ours-cluster`` on a
fresh 3-master cluster, each trial in its own process.

Both runs enqueue ``n`` no-op jobs per queue (8 queues, bulk enqueue), then
time one in-process worker (thread pool) serving all 8 queues until every
job has succeeded, and print jobs/s plus where the queues landed. Then the
wake-up latency (:func:`latency`): enqueue-to-start of single jobs for an
idle worker waiting on the 8 queues (8 slots on 3 masters on the cluster).

What it can and cannot show on a small machine: the three masters, the
worker and the enqueuer share the same cores, so a cluster cannot be faster
here -- there is no extra CPU for the extra masters. What it does show is
the client-side cost of a cluster: each script call goes through the
cluster client's routing (no pipelined lease behind the wait, one watcher
thread per slot). Scale-out needs masters on separate hosts and several
worker processes.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import redis

from bench import util
from scheduler import JobSpec, Scheduler, Task, Worker
from scheduler.devserver import DevServer
from tests.servers import ClusterSet

QUEUES = [f"bench{i}" for i in range(8)]


def noop_tasks(app: Scheduler) -> dict[str, Task[[], None]]:
    """One no-op task per queue of :data:`QUEUES`, registered on ``app``."""
    tasks = {}
    for q in QUEUES:

        @app.task(queue=q, name=f"noop_{q}")
        def noop() -> None:
            pass

        tasks[q] = noop
    return tasks


def drain(
    app: Scheduler, n: int, concurrency: int, tasks: dict[str, Task[[], None]] | None = None
) -> dict[str, Any]:
    """Enqueue ``n`` jobs per queue, then drain them; returns the timings."""
    tasks = tasks or noop_tasks(app)
    t0 = time.perf_counter()
    app.enqueue_many([JobSpec(tasks[q]) for q in QUEUES for _ in range(n)])
    enqueue_s = time.perf_counter() - t0
    total = n * len(QUEUES)
    worker = Worker(app, queues=QUEUES, concurrency=concurrency, max_block=1.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    while sum(app.backend.job_set_size(q, "done") for q in QUEUES) < total:
        time.sleep(0.05)
    drain_s = time.perf_counter() - t0
    worker.stop(grace=5)
    thread.join(15)
    return {
        "jobs": total,
        "enqueue_jobs_per_s": round(total / enqueue_s),
        "drain_jobs_per_s": round(total / drain_s),
    }


def enqueue_one(tasks: dict[str, Task[[], None]], n: int) -> float:
    """Enqueue ``n`` jobs one call at a time, to the queues in turn; jobs/s."""
    order = [tasks[QUEUES[i % len(QUEUES)]] for i in range(n)]
    t0 = time.perf_counter()
    for task in order:
        task.enqueue()
    return n / (time.perf_counter() - t0)


def trial(on_cluster: bool, url: str, n: int, concurrency: int) -> dict[str, Any]:
    """One trial of the suite's ``cluster`` scenario: on a fresh 3-master
    cluster (``on_cluster``) or on the server at ``url`` (emptied): bulk
    enqueue and drain of ``n`` jobs per queue (:func:`drain`, one in-process
    worker), then ``n`` jobs enqueued one at a time (:func:`enqueue_one`,
    no worker running). ``jobs_per_s`` is the drain's rate."""
    if on_cluster:
        with ClusterSet() as cluster:
            return _measure(cluster.url, n, concurrency)
    util.fresh(redis.Redis.from_url(url))
    return _measure(url, n, concurrency)


def _measure(url: str, n: int, concurrency: int) -> dict[str, Any]:
    app = Scheduler.from_url(url, prefix="bench")
    try:
        tasks = noop_tasks(app)
        out = drain(app, n, concurrency, tasks)
        out["enqueue_one_jobs_per_s"] = round(enqueue_one(tasks, n))
        out["jobs_per_s"] = out["drain_jobs_per_s"]
        return out
    finally:
        app.close()


def latency(app: Scheduler, samples: int) -> dict[str, Any]:
    """Enqueue-to-start latency of one idle worker waiting on the 8 queues.

    One job at a time, to the queues in turn; each is enqueued only after
    the worker went idle again (the previous job finished, plus 20 ms), so
    every sample is a wake-up from the blocking wait. On one server the
    wait is one ``BLPOP`` over all wake lists with the lease pipelined
    behind it; on a cluster one watcher per slot wakes the worker, which
    then leases with one more round trip. Returns percentiles in ms.
    """
    started: list[float] = []
    ran = threading.Event()
    tasks = {}
    for q in QUEUES:

        @app.task(queue=q, name=f"mark_{q}")
        def mark() -> None:
            started.append(time.perf_counter())
            ran.set()

        tasks[q] = mark
    worker = Worker(app, queues=QUEUES, concurrency=2, max_block=5.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    waits: list[float] = []
    try:
        for i in range(samples + 5):
            time.sleep(0.02)
            ran.clear()
            t0 = time.perf_counter()
            tasks[QUEUES[i % len(QUEUES)]].enqueue()
            if not ran.wait(10):
                raise RuntimeError("job did not start within 10 s")
            if i >= 5:  # the first few warm up connections and watchers
                waits.append((started[-1] - t0) * 1000)
    finally:
        worker.stop(grace=5)
        thread.join(15)
    waits.sort()

    def pct(q: float) -> float:
        return round(waits[min(len(waits) - 1, int(q * len(waits)))], 2)

    return {"samples": len(waits), "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="jobs per queue")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--latency-samples", type=int, default=200, help="wake-up samples")
    p.add_argument("--only", choices=["drain", "latency"], help="run one part")
    a = p.parse_args()
    results: dict[str, Any] = {}
    with DevServer() as single:
        app = Scheduler.from_url(single.url, prefix="bench")
        if a.only != "latency":
            results["single"] = drain(app, a.n, a.concurrency)
        if a.only != "drain":
            results["single_wakeup"] = latency(app, a.latency_samples)
        app.close()
    with ClusterSet() as cluster:
        app = Scheduler.from_url(cluster.url, prefix="bench")
        client: Any = app.redis
        owners = {q: client.get_node_from_key(app.queue_keys(q).jobs).name for q in QUEUES}
        if a.only != "latency":
            results["cluster"] = drain(app, a.n, a.concurrency)
            results["cluster"]["masters_used"] = len(set(owners.values()))
        if a.only != "drain":
            results["cluster_wakeup"] = latency(app, a.latency_samples)
            results["cluster_wakeup"]["slots"] = len(
                {client.keyslot(app.queue_keys(q).jobs) for q in QUEUES}
            )
            results["cluster_wakeup"]["masters"] = len(set(owners.values()))
        app.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
