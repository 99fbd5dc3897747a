"""Promotion of a burst of due jobs: script call durations and dispatch order.

``python -m bench.promotion [--n 100000] [--url URL]`` enqueues ``n`` delayed
jobs with 10 priorities (job ``i`` has ``i % 10``), waits until all are due,
then drives ``lease`` calls itself (no worker process: nothing else runs on
the server) until every job was leased, 20 per call like a worker with
``--concurrency 10``. It reports the server-side duration of every script
call from SLOWLOG (threshold 0: each call and the commands inside it are
logged; the scripts' own entries are kept) as p50 / p99 / max, the number of
calls that only promoted, and whether the leases came out in priority order
(``order_ok``: every lease at or below the one before it). Without ``--url``
it starts a throwaway server (:class:`scheduler.devserver.DevServer`).
SLOWLOG times are wall-clock inside Redis: on a loaded machine a preempted
Redis inflates single calls, so the p99 is the steadier figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from typing import Any

import redis

from scheduler import Scheduler
from scheduler.backend.lualoader import load_script_text
from scheduler.backend.record import parse_record
from scheduler.devserver import DevServer
from scheduler.task import EnqueueOptions, JobSpec


def measure(url: str, n: int) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    r.flushall()
    app = Scheduler(r, prefix="promo")
    qk = app.queue_keys("default")
    options = [EnqueueOptions(priority=float(p), delay=0.001) for p in range(10)]
    for start in range(0, n, 10_000):
        count = min(10_000, n - start)
        app.enqueue_many([JobSpec("m:f", (), {}, options[(start + i) % 10]) for i in range(count)])
    time.sleep(0.05)  # every ETA has passed
    r.script_load(load_script_text("lease"))  # no NOSCRIPT round in the log
    r.config_set("slowlog-max-len", 1_000_000)
    r.config_set("slowlog-log-slower-than", 0)
    r.slowlog_reset()
    priorities: list[float] = []
    durations: list[int] = []  # in call order
    promote_only: list[bool] = []
    while len(priorities) < n:
        reply = app.scripts.lease(qk, 20, "bench", f"p{len(promote_only)}")
        promote_only.append(not reply.jobs)
        priorities += [parse_record(j, t).priority for j, t in reply.jobs]
        if len(promote_only) % 200 == 0:  # drain the log before it wraps
            durations += _script_durations(r)
    durations += _script_durations(r)
    r.config_set("slowlog-log-slower-than", 10_000)
    promoting = sorted(d for d, only in zip(durations, promote_only, strict=True) if only)
    durations.sort()
    return {
        "n": n,
        "calls": len(promote_only),
        "promote_only_calls": len(promoting),
        "promote_call_us_p50": promoting[len(promoting) // 2] if promoting else None,
        "script_us_p50": durations[len(durations) // 2],
        "script_us_p99": durations[int(len(durations) * 0.99)],
        "script_us_max": durations[-1],
        "order_ok": all(a >= b for a, b in itertools.pairwise(priorities)),
    }


def _script_durations(r: redis.Redis) -> list[int]:
    entries = r.slowlog_get(1_000_000)
    r.slowlog_reset()
    # Newest first in the log: reversed into call order.
    return [
        int(e["duration"]) for e in reversed(entries) if e["command"].upper().startswith(b"EVALSHA")
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--url", help="Redis URL (default: a throwaway server)")
    a = p.parse_args(argv)
    if a.url:
        result = measure(a.url, a.n)
    else:
        server = DevServer().start()
        try:
            result = measure(server.url, a.n)
        finally:
            server.stop()
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
