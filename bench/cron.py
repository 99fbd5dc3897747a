"""The cron lag scenario (ours): N per-second cron schedules, P cron processes.

``python -m bench.trial ours cron --n 1000 --procs 5 --seconds 8``: stores N
cron schedules ``* * * * * *`` (all due in the same second, every second) in
queue ``cronbench``, starts P ``scheduler cron bench.app:app --no-sync``
processes, lets them run, stops them, and measures from the job records
(server clock on both sides) the *lag* of each firing: job creation time
minus fire time. The first ``WARMUP_S`` seconds (start-up) and the last
second (stopping) are left out. Also reported: firings that got no job
(the lag promise also means not falling behind) and script calls per second.

Only the public API and the CLI are used, so ``bash bench/run.sh --ref
COMMIT`` measures older commits with the same code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench import util

QUEUE = "cronbench"
WARMUP_S = 2


def _script_calls(r: redis.Redis) -> int:
    stats: dict[str, dict[str, int]] = r.info("commandstats")  # type: ignore[assignment]
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def cron_lag(
    r: redis.Redis, n: int, procs: int, seconds: int, log_dir: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Run the scenario once; lags in ms."""
    from bench import app as bench_app
    from scheduler.backend.record import parse_record

    util.fresh(r)
    app = bench_app.app
    for i in range(n):
        app.cron("* * * * * *", bench_app.noop, id=f"c{i}", queue=QUEUE)
    app.schedules.sync()
    cmd = [
        sys.executable,
        "-m",
        "scheduler",
        "cron",
        "bench.app:app",
        "--no-sync",
        "-q",
        QUEUE,
        "--log-level",
        "WARNING",
    ]
    workers = [
        util.WorkerProcess(cmd, log_dir / f"cron-{procs}-{i}.log", env) for i in range(procs)
    ]
    t0 = _server_ms(r)
    calls0 = _script_calls(r)
    try:
        time.sleep(seconds)
        calls = _script_calls(r) - calls0
        cpu = sum(w.cpu_s() for w in workers)
    finally:
        for w in workers:
            w.stop()
    lo = t0 - t0 % 1000 + WARMUP_S * 1000
    hi = t0 + (seconds - 1) * 1000
    lags: list[int] = []
    raw: dict[bytes, bytes] = r.hgetall(app.queue_keys(QUEUE).jobs)  # type: ignore[assignment]
    for key, value in raw.items():
        rec = parse_record(key.decode(), value)
        fire = int(json.loads(rec.meta)["fire_at"])
        if lo <= fire <= hi:
            lags.append(rec.enqueued_ms - fire)
    expected = n * ((hi - lo) // 1000 + 1)
    if not lags:
        raise RuntimeError(f"no firing measured; see {log_dir}")
    return {
        "schedules": n,
        "processes": procs,
        "lag_p50_ms": _percentile(lags, 0.50),
        "lag_p99_ms": _percentile(lags, 0.99),
        "lag_max_ms": float(max(lags)),
        "firings": len(lags),
        "firings_missing": expected - len(lags),
        "script_calls_per_s": calls / seconds,
        "cron_cpu_s_per_s": cpu / seconds,
    }


def _server_ms(r: redis.Redis) -> int:
    sec, usec = r.time()
    return int(sec) * 1000 + int(usec) // 1000


def main_env(url: str) -> dict[str, str]:
    """Environment of the cron processes (the app reads ``BENCH_REDIS_URL``)."""
    env = dict(os.environ)
    env["BENCH_REDIS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(util.ROOT), env.get("PYTHONPATH")]))
    return env
