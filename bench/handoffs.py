"""Where an idle worker's latency goes, hand-off by hand-off (issue 16).

``python -m bench.handoffs --url URL [--n 1000] [--rate 200]`` starts one
worker (``bench.app:app``, concurrency 10) in a child process with the
hand-off points wrapped to record wall-clock times per job, enqueues ``n``
``stamp`` jobs at ``rate`` per second from this process, and prints the
percentiles (ms) of each part of "enqueue call starts -> task starts":

* ``enqueue_call`` -- the producer's enqueue call;
* ``reply->task`` -- the waiter's lease reply is read -> the task function
  runs (the worker's own part), split into the hand-offs it took:
  ``waiter->dispatcher``, ``dispatcher->submit``, ``submit->pool thread``
  (the dispatcher's path), or ``waiter->run_here`` (the waiter's thread ran
  the job itself), then ``thread->task`` (``run_task``: context, payload,
  middleware);
* ``total`` -- enqueue call starts -> task starts.

Jobs the dispatcher leased itself in a round trip (not through the waiter)
appear only in ``submit->pool thread`` and ``total``. Wrapping costs a few
µs per point. For profiling only: the numbers are not part of the suite.
Run it against a commit by running it from an export of that commit (the
package is imported from the current directory first).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import util

POINTS = ("reply", "dispatch", "submit", "thread")


def worker_main(out: str) -> None:
    """The instrumented worker (child process); writes the times to ``out``."""
    import scheduler.worker.worker as worker_mod
    from scheduler.backend import waiting
    from scheduler.worker import pool
    from scheduler.worker.messages import Leased

    times: dict[str, dict[str, float]] = {p: {} for p in POINTS}

    def wrap(cls: Any, name: str, point: str, ids: Any, after: bool = False) -> None:
        original = getattr(cls, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not after:
                now = time.time()
                for job_id in ids(args, None):
                    times[point][job_id] = now
                return original(*args, **kwargs)
            result = original(*args, **kwargs)
            now = time.time()
            for job_id in ids(args, result):
                times[point][job_id] = now
            return result

        setattr(cls, name, wrapper)

    wrap(
        waiting.BlockingLease,
        "wait_and_lease",
        "reply",
        lambda a, r: [j for j, _ in r[0].jobs],
        True,
    )
    leased = Leased
    wrap(
        worker_mod.Worker,
        "_dispatch",
        "dispatch",
        lambda a, r: [j for j, _ in a[1].reply.jobs] if isinstance(a[1], leased) else [],
    )
    wrap(pool.ThreadRunner, "submit", "submit", lambda a, r: [a[1].id])
    wrap(pool.ThreadRunner, "_run_job", "thread", lambda a, r: [a[1].id])
    serve_then_dump(lambda: Path(out).write_text(json.dumps(times)))


def serve_then_dump(dump: Callable[[], object]) -> None:
    """Run ``scheduler worker bench.app:app --concurrency 10`` in this
    process (the instrumented one) and call ``dump`` as it exits (the CLI
    ends with ``os._exit``, so ``atexit`` would not run)."""
    real_exit = os._exit

    def dump_and_exit(code: int) -> None:
        dump()
        real_exit(code)

    os._exit = dump_and_exit
    from scheduler.cli.main import main

    sys.argv = ["scheduler", "worker", "bench.app:app", "--concurrency", "10"]
    sys.argv += ["--log-level", "WARNING"]
    main()


def measure(url: str, n: int, rate: float) -> dict[str, dict[str, float]]:
    """Run the worker and the producer; percentiles of each part, ms."""
    os.environ["BENCH_REDIS_URL"] = url
    import redis

    from bench import app as bench_app

    redis.Redis.from_url(url).flushall()
    out = tempfile.mktemp(prefix="handoffs-", suffix=".json")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(util.ROOT), os.environ.get("PYTHONPATH", "")])
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.handoffs", "--worker", out], cwd=util.ROOT, env=env
    )
    try:
        bench_app.stamp.enqueue().result(timeout=60)
        time.sleep(0.5)  # idle, blocked on Redis
        sent = []
        begin = time.perf_counter()
        for i in range(n):
            while (left := begin + i / rate - time.perf_counter()) > 0:
                time.sleep(left)
            t0 = time.time()
            handle = bench_app.stamp.enqueue()
            sent.append((handle, t0, time.time()))
        starts = [float(h.result(timeout=60)) for h, _, _ in sent]
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)
    times = json.loads(Path(out).read_text())
    os.unlink(out)
    parts: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        parts.setdefault(name, []).append(seconds * 1000)

    for (handle, t0, t1), start in zip(sent, starts, strict=True):
        j = handle.id
        add("enqueue_call", t1 - t0)
        add("total", start - t0)
        thread = times["thread"].get(j)
        if thread is not None:
            add("thread->task", start - thread)
        reply = times["reply"].get(j)
        if reply is None or thread is None:
            if j in times["submit"] and thread is not None:
                add("submit->pool thread (dispatcher's own lease)", thread - times["submit"][j])
            continue
        add("reply->task", start - reply)
        if j in times["submit"]:
            add("waiter->dispatcher", times["dispatch"][j] - reply)
            add("dispatcher->submit", times["submit"][j] - times["dispatch"][j])
            add("submit->pool thread", thread - times["submit"][j])
        else:
            add("waiter->run_here", thread - reply)
    return {
        name: {
            "n": len(v),
            "p50": util.percentile(v, 50),
            "p90": util.percentile(v, 90),
            "p99": util.percentile(v, 99),
        }
        for name, v in parts.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker_main(a.worker)
        return
    result = measure(a.url, a.n, a.rate)
    print(f"{'part':46s} {'n':>5s} {'p50':>7s} {'p90':>7s} {'p99':>7s}  (ms)")
    for name, s in result.items():
        print(f"{name:46s} {s['n']:5d} {s['p50']:7.3f} {s['p90']:7.3f} {s['p99']:7.3f}")


if __name__ == "__main__":
    main()
