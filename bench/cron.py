"""The cron lag scenario (ours): N per-second cron schedules, P cron processes.

``python -m bench.trial ours cron --n 1000 --procs 5 --seconds 8``: stores N
cron schedules ``* * * * * *`` (all due in the same second, every second) in
queue ``cronbench``, starts P ``scheduler cron bench.app:app --no-sync``
processes, waits for the first job (the processes are up), lets them run
``--seconds``, stops them, and measures from the job records (server clock
on both sides) the *lag* of each firing: job creation time minus fire time.
The first ``WARMUP_S`` seconds after the first job and the last second
(stopping) are left out. Also reported: per fire time the first job's lag
and the spread to the last job (medians), firings that got no job (the lag
promise also means not falling behind), script calls per second, and the
CPU of the cron processes and of Redis per second of the run (CPU time is
not inflated by preemption on a loaded machine, unlike wall times).

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
STARTUP_TIMEOUT_S = 60


def _script_calls(r: redis.Redis) -> int:
    stats: dict[str, dict[str, int]] = r.info("commandstats")  # type: ignore[assignment]
    return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


def _redis_cpu_s(r: redis.Redis) -> float:
    """CPU seconds the Redis server used so far (user + system, all threads):
    unlike wall time inside a call, not inflated when the server is preempted."""
    cpu: dict[str, float] = r.info("cpu")  # type: ignore[assignment]
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


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
    try:
        # Measure from the first job on (the processes are up and read their
        # schedules): start-up is not what the lag promise is about.
        jobs_key = app.queue_keys(QUEUE).jobs
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not r.hlen(jobs_key) and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = _server_ms(r)
        calls0 = _script_calls(r)
        redis_cpu0 = _redis_cpu_s(r)
        cpu0 = sum(w.cpu_s() for w in workers)
        time.sleep(seconds)
        calls = _script_calls(r) - calls0
        redis_cpu = _redis_cpu_s(r) - redis_cpu0
        cpu = sum(w.cpu_s() for w in workers) - cpu0
    finally:
        for w in workers:
            w.stop()
    lo = t0 - t0 % 1000 + WARMUP_S * 1000
    hi = t0 + (seconds - 1) * 1000
    lags: list[int] = []
    per_second: dict[int, list[int]] = {}
    raw: dict[bytes, bytes] = r.hgetall(app.queue_keys(QUEUE).jobs)  # type: ignore[assignment]
    for key, value in raw.items():
        rec = parse_record(key.decode(), value)
        fire = int(json.loads(rec.meta)["fire_at"])
        if lo <= fire <= hi:
            lags.append(rec.enqueued_ms - fire)
            per_second.setdefault(fire, []).append(rec.enqueued_ms - fire)
    expected = n * ((hi - lo) // 1000 + 1)
    if not lags:
        raise RuntimeError(f"no firing measured; see {log_dir}")
    return {
        "schedules": n,
        "processes": procs,
        "lag_p50_ms": _percentile(lags, 0.50),
        "lag_p99_ms": _percentile(lags, 0.99),
        "lag_max_ms": float(max(lags)),
        # Per fire time: the first job's lag (wake-up and the first call) and
        # the spread from the first job to the last (the firing work itself).
        "first_lag_p50_ms": _percentile([min(v) for v in per_second.values()], 0.5),
        "spread_p50_ms": _percentile([max(v) - min(v) for v in per_second.values()], 0.5),
        "firings": len(lags),
        "firings_missing": expected - len(lags),
        "script_calls_per_s": calls / seconds,
        "cron_cpu_s_per_s": cpu / seconds,
        "redis_cpu_s_per_s": redis_cpu / seconds,
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
