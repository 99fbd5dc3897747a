"""Promotion of a burst of due jobs: script call durations and dispatch order.

``python -m bench.promotion [--n 100000] [--url URL]`` enqueues ``n`` delayed
jobs with 10 priorities (job ``i`` has ``i % 10``), waits until all are due,
then drives ``lease`` calls itself (no worker process: nothing else runs on
the server) until every job was leased, 20 per call like a worker with
``--concurrency 10``. Two measures of each script call:

* **CPU time** (robust to load): each call is sent in one pipeline between
  two ``INFO cpu`` readings of the server's main thread (user + system), so
  Redis runs the three back to back; the call's CPU time is the difference
  less that of an ``INFO``/``PING``/``INFO`` pipeline (the median of
  ``BASELINE`` of them). CPU time does not grow while a preempted server
  waits for a core, so on a loaded machine this is still what the call
  costs -- the figure the 10 ms bound is checked against.
* **Wall time** inside Redis from SLOWLOG (threshold 0: each call and the
  commands inside it are logged; the scripts' own entries are kept): on a
  loaded machine a preempted Redis inflates single calls.

Reported as p50 / p99 / max over all calls and over the promote-only calls,
with whether the leases came out in priority order (``order_ok``: every
lease at or below the one before it). Without ``--url`` it starts a
throwaway server (:class:`scheduler.devserver.DevServer`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from typing import Any

import redis

from scheduler import Scheduler
from scheduler.backend.lualoader import load_script_text
from scheduler.backend.record import parse_record
from scheduler.devserver import DevServer
from scheduler.task import EnqueueOptions, JobSpec

BASELINE = 200


def _main_cpu_us(info: dict[str, Any]) -> float:
    user, system = info["used_cpu_user_main_thread"], info["used_cpu_sys_main_thread"]
    return (float(user) + float(system)) * 1e6


def _between_cpu_readings(r: redis.Redis, command: tuple[Any, ...] | None) -> tuple[float, Any]:
    """``command`` (None: a PING) pipelined between two ``INFO cpu``: the CPU
    µs of the main thread from one reading to the next, and its reply."""
    pipe = r.pipeline(transaction=False)
    pipe.info("cpu")
    if command is None:
        pipe.ping()
    else:
        pipe.execute_command(*command)
    pipe.info("cpu")
    before, reply, after = pipe.execute()
    return _main_cpu_us(after) - _main_cpu_us(before), reply


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


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
    baseline = statistics.median(_between_cpu_readings(r, None)[0] for _ in range(BASELINE))
    r.config_set("slowlog-max-len", 1_000_000)
    r.config_set("slowlog-log-slower-than", 0)
    r.slowlog_reset()
    priorities: list[float] = []
    durations: list[int] = []  # in call order
    cpu: list[float] = []
    promote_only: list[bool] = []
    while len(priorities) < n:
        call = app.scripts.lease_call(qk, 20, "bench", f"p{len(promote_only)}")
        used, raw = _between_cpu_readings(r, app.scripts.command(call))
        reply = call.parse(raw)
        cpu.append(max(0.0, used - baseline))
        promote_only.append(not reply.jobs)
        priorities += [parse_record(j, t).priority for j, t in reply.jobs]
        if len(promote_only) % 200 == 0:  # drain the log before it wraps
            durations += _script_durations(r)
    durations += _script_durations(r)
    r.config_set("slowlog-log-slower-than", 10_000)
    promoting = [d for d, only in zip(durations, promote_only, strict=True) if only]
    promoting_cpu = [c for c, only in zip(cpu, promote_only, strict=True) if only]
    return {
        "n": n,
        "calls": len(promote_only),
        "promote_only_calls": len(promoting),
        "cpu_baseline_us": round(baseline, 1),
        "promote_call_cpu_us_p50": _pct(promoting_cpu, 0.5),
        "promote_call_cpu_us_max": _pct(promoting_cpu, 1.0),
        "script_cpu_us_p50": _pct(cpu, 0.5),
        "script_cpu_us_p99": _pct(cpu, 0.99),
        "script_cpu_us_max": _pct(cpu, 1.0),
        "promote_call_us_p50": _pct([float(d) for d in promoting], 0.5),
        "script_us_p50": _pct([float(d) for d in durations], 0.5),
        "script_us_p99": _pct([float(d) for d in durations], 0.99),
        "script_us_max": _pct([float(d) for d in durations], 1.0),
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
