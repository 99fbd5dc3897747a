"""Cluster scenario: drain 8 queues on a 3-master Redis Cluster vs one server.

Run from the repository root::

    .venv/bin/python -m bench.cluster --n 2000 --concurrency 16

Both runs enqueue ``n`` no-op jobs per queue (8 queues, bulk enqueue), then
time one in-process worker (thread pool) serving all 8 queues until every
job has succeeded, and print jobs/s plus where the queues landed.

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

from scheduler import JobSpec, Scheduler, Worker
from scheduler.devserver import DevServer
from tests.servers import ClusterSet

QUEUES = [f"bench{i}" for i in range(8)]


def drain(app: Scheduler, n: int, concurrency: int) -> dict[str, Any]:
    """Enqueue ``n`` jobs per queue, then drain them; returns the timings."""
    tasks = {}
    for q in QUEUES:

        @app.task(queue=q, name=f"noop_{q}")
        def noop() -> None:
            pass

        tasks[q] = noop
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="jobs per queue")
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args()
    results: dict[str, Any] = {}
    with DevServer() as single:
        app = Scheduler.from_url(single.url, prefix="bench")
        results["single"] = drain(app, a.n, a.concurrency)
        app.close()
    with ClusterSet() as cluster:
        app = Scheduler.from_url(cluster.url, prefix="bench")
        client: Any = app.redis
        owners = {q: client.get_node_from_key(app.queue_keys(q).jobs).name for q in QUEUES}
        results["cluster"] = drain(app, a.n, a.concurrency)
        results["cluster"]["masters_used"] = len(set(owners.values()))
        app.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
