"""One trial of one scenario for one library, in a fresh Python process.

``python -m bench.trial LIB SCENARIO --url URL [--n N] ...`` prints one JSON
object on its last stdout line: ``{"samples": [{metric: value, ...}, ...]}``.
Every trial starts from an empty server (FLUSHALL, CONFIG RESETSTAT).

Scenarios (see docs/benchmarks.md):

* ``enqueue_one`` -- N no-op jobs, one enqueue call each;
* ``enqueue_bulk`` -- N no-op jobs through the bulk API;
* ``drain`` -- N jobs pre-queued, one worker process, first to last completion;
* ``latency`` -- idle worker, N jobs at a steady rate, enqueue -> task start;
* ``memory`` -- Redis ``used_memory`` per queued job (ours);
* ``depth`` -- lease+complete throughput with N jobs ready (ours);
* ``promote`` -- longest script call while N due delayed jobs are promoted (ours);
* ``cron`` -- lag of N per-second cron schedules with P cron processes (ours,
  :mod:`bench.cron`).
* ``expiry`` -- Redis memory over time while N finished 100 KB results expire (ours).
* ``middleware_chain`` -- CPU per task call through the middleware chain,
  empty and with one middleware, in process (:mod:`bench.chain`);
* ``cluster`` -- 8 queues, N jobs each: bulk enqueue, drain by one in-process
  worker, then N enqueued one at a time; ``ours`` on this server or
  ``ours-cluster`` on a fresh 3-master cluster (:func:`bench.cluster.trial`).

The variants of ours (``ours-timeout``, ``ours-async``, ...;
:mod:`bench.variants`) run the same scenarios with one feature on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench import util
from bench.libs import Lib, Ours, make

WARMUP = 20


def enqueue(lib: Lib, r: redis.Redis, n: int, *, bulk: bool) -> dict[str, Any]:
    """Time ``n`` enqueues (after a small untimed warm-up: connection, script load)."""
    util.fresh(r)
    run = lib.enqueue_bulk if bulk else lib.enqueue_one
    run(WARMUP)
    mem0 = util.used_memory(r)
    meter = util.RedisMeter(r)
    meter.start()
    os0 = os.times()
    t0 = time.perf_counter()
    handles = run(n)
    wall = time.perf_counter() - t0
    os1 = os.times()
    user, system = os1.user - os0.user, os1.system - os0.system
    cpu = user + system
    assert len(handles) == n, f"enqueued {len(handles)} of {n}"
    mem1 = util.used_memory(r)
    return {
        "jobs_per_s": n / wall,
        "wall_s": wall,
        "client_cpu_us_per_job": cpu / n * 1e6,
        "client_user_us_per_job": user / n * 1e6,
        "client_sys_us_per_job": system / n * 1e6,
        "client_wall_us_per_job": wall / n * 1e6,
        "bytes_per_job": (mem1 - mem0) / n,
        **meter.stop(n),
    }


def drain(
    lib: Lib, r: redis.Redis, n: int, concurrency: int, log_dir: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Pre-queue ``n`` jobs, start one worker, time first to last completion (from Redis)."""
    util.fresh(r)
    t0 = time.perf_counter()
    ids = lib.prefill(n)
    prefill_s = time.perf_counter() - t0
    meter = util.RedisMeter(r)
    meter.start()
    worker = util.WorkerProcess(lib.worker_cmd(concurrency), log_dir / f"{lib.name}-drain.log", env)
    try:
        seen = util.wait_until(
            lambda: lib.done_count() >= n or not worker.alive(),
            timeout=max(180.0, n / 40),
            interval=0.02,
            what=f"{n} jobs done",
        )
        if not worker.alive():
            raise RuntimeError(f"worker exited with {worker.proc.returncode}; see {log_dir}")
        rss = worker.rss_mb()
        worker_cpu = worker.cpu_s()
        redis_stats = meter.stop(n)
    finally:
        worker.stop()
    lease_calls = redis_stats["commandstats"].get("zpopmin", {}).get("calls", 0)
    times = sorted(lib.finish_times(ids))
    assert len(times) == n, f"found {len(times)} finish times for {n} jobs"
    span = times[-1] - times[0]
    return {
        "jobs_per_s": (n - 1) / span if span > 0 else float("inf"),
        "span_s": span,
        "startup_s": times[0] - worker.spawned,
        "spawn_to_last_s": times[-1] - worker.spawned,
        "detect_lag_s": seen - times[-1],
        "prefill_s": prefill_s,
        "worker_rss_mb": rss,
        "worker_cpu_s": worker_cpu,
        # All of the worker's CPU (start-up included) over the jobs: an upper bound.
        "worker_cpu_us_per_job": worker_cpu / n * 1e6,
        # Ours: mean jobs per lease script call (each pops with one ZPOPMIN).
        **({"jobs_per_lease_call": n / lease_calls} if lease_calls else {}),
        **redis_stats,
    }


def latency(
    lib: Lib,
    r: redis.Redis,
    n: int,
    rate: float,
    concurrency: int,
    log_dir: Path,
    env: dict[str, str],
) -> dict[str, Any]:
    """Idle worker; ``n`` jobs at ``rate``/s; enqueue -> task start in ms."""
    util.fresh(r)
    worker = util.WorkerProcess(
        lib.worker_cmd(concurrency), log_dir / f"{lib.name}-latency.log", env
    )
    try:
        warm = lib.enqueue_stamp()
        util.wait_until(lambda: lib.done_count() >= 1, timeout=60, what="warm-up job done")
        startup = time.time() - worker.spawned
        lib.stamp_results([warm])
        time.sleep(0.5)  # the worker is idle and blocked on Redis now
        sent: list[tuple[Any, float]] = []
        call_ms: list[float] = []
        begin = time.perf_counter()
        for i in range(n):
            target = begin + i / rate
            while (left := target - time.perf_counter()) > 0:
                time.sleep(left)
            t = time.time()
            sent.append((lib.enqueue_stamp(), t))
            call_ms.append((time.time() - t) * 1000)
        offered = (n - 1) / (time.perf_counter() - begin) if n > 1 else rate
        util.wait_until(
            lambda: lib.done_count() >= n + 1, timeout=120, interval=0.02, what="all done"
        )
        rss = worker.rss_mb()
    finally:
        worker.stop()
    starts = lib.stamp_results([h for h, _ in sent])
    assert len(starts) == n, f"{len(starts)} results for {n} jobs"
    lat = [(s - t) * 1000 for s, (_, t) in zip(starts, sent, strict=True)]
    parts = latency_parts(lib, r, sent, starts) if isinstance(lib, Ours) else {}
    return {
        **parts,
        "enqueue_call_p50_ms": util.percentile(call_ms, 50),
        "p50_ms": util.percentile(lat, 50),
        "p90_ms": util.percentile(lat, 90),
        "p99_ms": util.percentile(lat, 99),
        "max_ms": max(lat),
        "min_ms": min(lat),
        "mean_ms": sum(lat) / len(lat),
        "offered_rate": offered,
        "startup_s": startup,
        "worker_rss_mb": rss,
    }


def latency_parts(
    lib: Ours, r: redis.Redis, sent: list[tuple[Any, float]], starts: list[float]
) -> dict[str, float]:
    """Mean split of ours' enqueue -> start latency, from the job records
    (server enqueue time) and the event stream ("leased" event ids). Both are
    whole milliseconds, truncated: on average 0.5 ms early, which is corrected
    below (a difference of two such times needs no correction). Only the
    means over all jobs are meaningful."""
    _mod = util.scheduler_module("record")
    parse_record = _mod.parse_record

    leased: dict[str, int] = {}
    for entry_id, fields in r.xrange(lib.qk.key("events"), "-", "+"):
        if fields.get(b"e") == b"leased":
            leased.setdefault(fields[b"j"].decode(), int(entry_id.split(b"-")[0]))
    ids = [h.id for h, _ in sent]
    recs = {
        job_id: parse_record(job_id, text)
        for job_id, text in zip(ids, r.hmget(lib.qk.jobs, ids), strict=True)
        if text is not None
    }
    a, b, c, k = 0.0, 0.0, 0.0, 0
    for (h, t0), start in zip(sent, starts, strict=True):
        rec = recs.get(h.id)
        if rec is None or h.id not in leased:
            continue
        a += rec.enqueued_ms + 0.5 - t0 * 1000
        b += leased[h.id] - rec.enqueued_ms
        c += start * 1000 - (leased[h.id] + 0.5)
        k += 1
    if not k:
        return {}
    return {
        "mean_t0_to_server_enqueue_ms": a / k,
        "mean_server_enqueue_to_lease_ms": b / k,
        "mean_lease_to_task_start_ms": c / k,
    }


def floor(r: redis.Redis, url: str, n: int) -> dict[str, Any]:
    """Round-trip floors on this machine: the cheapest possible one-call-per-job
    rates, for reading the targets. redis-py as configured by the package."""
    import socket

    _mod = util.scheduler_module("connection")
    client_from_url = _mod.client_from_url

    util.fresh(r)
    client = client_from_url(url)
    keys = [f"k{i}" for i in range(10)]
    trivial = client.register_script("return 1")

    def per_call(fn: Any) -> float:
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n * 1e6

    host, port = (
        client.connection_pool.connection_kwargs["host"],
        client.connection_pool.connection_kwargs["port"],
    )
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def raw_ping() -> None:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        sock.recv(64)

    out = {
        "raw_socket_ping_us": per_call(raw_ping),
        "redis_py_ping_us": per_call(client.ping),
        "redis_py_lpush_us": per_call(lambda: client.lpush("floor", b"x" * 120)),
        "redis_py_evalsha_trivial_us": per_call(
            lambda: trivial(keys=keys, args=[10_000, 1, *["x"] * 9])
        ),
    }
    sock.close()
    return out


def key_memory(r: redis.Redis, pattern: str) -> dict[str, dict[str, Any]]:
    """MEMORY USAGE (exact: SAMPLES 0), type and encoding of every key matching ``pattern``."""
    out = {}
    for key in r.scan_iter(match=pattern, count=1000):
        name = key.decode()
        out[name] = {
            "bytes": r.memory_usage(key, samples=0),
            "type": r.type(key).decode(),
            "encoding": r.object("ENCODING", key).decode(),
        }
    return out


def memory(lib: Ours, r: redis.Redis, n: int) -> dict[str, Any]:
    """``used_memory`` delta per queued no-op job, and where the bytes are."""
    util.fresh(r)
    lib.prefill(1)  # keys, registry, script cache exist before the baseline
    mem0 = util.used_memory(r)
    lib.prefill(n)
    mem1 = util.used_memory(r)
    keys = key_memory(r, "*")
    events = sum(v["bytes"] for k, v in keys.items() if k.endswith(":events"))
    record = r.hget(lib.qk.jobs, next(iter(r.hkeys(lib.qk.jobs))))
    return {
        "bytes_per_job": (mem1 - mem0) / n,
        "bytes_per_job_without_events": (mem1 - mem0 - events) / n,
        "events_stream_bytes": events,
        "record_bytes": len(record or b""),
        "keys": keys,
    }


def _lease_complete(lib: Ours, jobs: int, worker_id: str, batch: int) -> tuple[int, float]:
    _mod = util.scheduler_module("record")
    parse_record = _mod.parse_record

    scripts, qk = lib.app.scripts, lib.qk
    done, calls = 0, 0
    t0 = time.perf_counter()
    while done < jobs:
        reply = scripts.lease(qk, min(batch, jobs - done), worker_id, f"{worker_id}:{calls}")
        calls += 1
        items = [(jid, parse_record(jid, text).token, "null") for jid, text in reply.jobs]
        if not items:
            break
        scripts.complete(qk, items)
        done += len(items)
    return done, time.perf_counter() - t0


def depth(lib: Ours, r: redis.Redis, n: int, jobs: int, samples: int) -> list[dict[str, Any]]:
    """Lease+complete throughput (batches of 10, like a worker with concurrency 10)
    while ``n`` jobs are ready. A small depth is refilled before each sample; a
    large one is filled once (each sample takes ``jobs`` of its ``n``)."""
    out = []
    refill = n < 10 * jobs
    prefill_s = None
    mem_per_job = None
    for i in range(samples):
        if refill or i == 0:
            util.fresh(r)
            mem0 = util.used_memory(r)
            t0 = time.perf_counter()
            lib.prefill(n if refill else n + samples * jobs)
            prefill_s = time.perf_counter() - t0
            mem_per_job = (util.used_memory(r) - mem0) / (n if refill else n + samples * jobs)
        ready = int(r.zcard(lib.qk.ready))
        meter = util.RedisMeter(r)
        meter.start()
        done, wall = _lease_complete(lib, min(jobs, n), f"bench-depth-{i}", 10)
        stats = meter.stop(done)
        if done == 0:
            raise RuntimeError("nothing was leased")
        out.append(
            {
                "jobs_per_s": done / wall,
                "ready_at_start": ready,
                "jobs": done,
                "prefill_s": prefill_s,
                "bytes_per_job_at_depth": mem_per_job,
                "evalsha_us_per_job": stats["scripts"].get("evalsha", {}).get("usec", 0) / done,
                "redis_cpu_us_per_job": stats["redis_cpu_us_per_job"],
            }
        )
    return out


class SlowlogCollector:
    """Collects script calls from SLOWLOG while a window is measured.

    Redis 7 also logs every command a script runs (4-6 per job here), so with
    a threshold of 0 the log grows by hundreds of thousands of entries, and
    reading them (pure-Python RESP parsing) loads the 2-core box and slows the
    measured worker. The default threshold is therefore 100 us: every script
    call at least that long is logged, so the *longest* call is exact whenever
    it is over 100 us (it is: milliseconds). Averages come from
    ``INFO commandstats``. The log is read and reset atomically (MULTI/EXEC),
    so nothing is lost between reads.
    """

    MAX_LEN = 200_000

    def __init__(self, r: redis.Redis, shas: dict[str, str], threshold_us: int = 100) -> None:
        self.r = r
        self.shas = shas
        self.threshold_us = threshold_us
        self.by_script: dict[str, list[int]] = {}
        self.longest_other = 0
        self.longest_other_cmd = ""
        self.entries = 0
        self.overflowed = False
        self._old = r.config_get("slowlog-*")

    def start(self) -> None:
        self.r.config_set("slowlog-max-len", self.MAX_LEN)
        self.r.config_set("slowlog-log-slower-than", self.threshold_us)
        self.r.slowlog_reset()

    def poll(self) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.slowlog_get(-1)
        pipe.slowlog_reset()
        entries = pipe.execute()[0]
        self.entries += len(entries)
        self.overflowed = self.overflowed or len(entries) >= self.MAX_LEN
        for e in entries:
            cmd = e["command"]
            if cmd[:8].upper() == b"EVALSHA ":
                name = self.shas.get(cmd[8:48].decode(errors="replace"), "unknown")
                self.by_script.setdefault(name, []).append(int(e["duration"]))
            elif (
                not cmd.startswith((b"SLOWLOG", b"MULTI", b"EXEC"))
                and int(e["duration"]) > self.longest_other
            ):
                self.longest_other = int(e["duration"])
                self.longest_other_cmd = cmd[:60].decode(errors="replace")

    def stop(self) -> None:
        self.r.config_set("slowlog-log-slower-than", self._old["slowlog-log-slower-than"])
        self.poll()
        self.r.config_set("slowlog-max-len", self._old["slowlog-max-len"])

    def result(self) -> dict[str, Any]:
        calls = [d for ds in self.by_script.values() for d in ds]
        return {
            "max_script_us": max(calls) if calls else None,
            "slowlog_threshold_us": self.threshold_us,
            "logged_script_calls": len(calls),
            "script_calls_over_1ms": sum(1 for d in calls if d >= 1000),
            "max_by_script_us": {k: max(v) for k, v in self.by_script.items()},
            "logged_calls_by_script": {k: len(v) for k, v in self.by_script.items()},
            # Commands run inside scripts are logged too (Redis 7): their longest.
            "max_other_command_us": self.longest_other,
            "max_other_command": self.longest_other_cmd,
            "slowlog_entries": self.entries,
            "slowlog_overflowed": self.overflowed,
        }


def script_shas() -> dict[str, str]:
    """SHA1 (as Redis computes it for EVALSHA) -> script name."""
    scripts = util.scheduler_module("scripts")
    return {
        hashlib.sha1(scripts.load_script_text(s).encode()).hexdigest(): s
        for s in scripts.SCRIPT_NAMES
    }


def promote(
    lib: Ours,
    r: redis.Redis,
    n: int,
    concurrency: int,
    log_dir: Path,
    env: dict[str, str],
    threshold_us: int,
) -> dict[str, Any]:
    """``n`` due delayed jobs, one worker promoting them through its lease calls;
    the longest single script call in that window, from SLOWLOG.

    The jobs carry 10 priorities (job ``i`` has ``i % 10``), all due before
    the worker starts, so every job leased must rank at or above every job
    not yet leased: ``order_inversions`` counts the unleased jobs ranked
    above the lowest leased one once promotion is done (0 = order kept)."""
    util.fresh(r)
    ids = lib.prefill(n, delay=0.001, priorities=10)
    time.sleep(0.05)  # all due now
    delayed_key = lib.qk.key("delayed")
    assert int(r.zcard(delayed_key)) == n
    slow = SlowlogCollector(r, script_shas(), threshold_us)
    slow.start()
    meter = util.RedisMeter(r)
    meter.start()
    worker = util.WorkerProcess(
        lib.worker_cmd(concurrency), log_dir / f"{lib.name}-promote.log", env
    )
    try:
        t_end = util.wait_until(
            lambda: int(r.zcard(delayed_key)) == 0,
            timeout=300,
            interval=0.02,
            what="all promoted",
        )
        stats = meter.stop(n)
    finally:
        slow.stop()
        worker.stop()
    scripts = stats["scripts"].get("evalsha", {})
    return {
        "order_inversions": order_inversions(lib.records(ids)),
        **slow.result(),
        "promote_all_s": t_end - worker.spawned,
        "script_calls": scripts.get("calls"),
        "script_us_per_call": scripts.get("usec_per_call"),
    }


def order_inversions(records: list[Any]) -> int:
    """Jobs never leased whose priority is above that of a job leased (the
    token is kept once a job was leased, released ones included)."""
    leased = [rec.priority for rec in records if rec.token]
    if not leased:
        return 0
    lowest = min(leased)
    return sum(1 for rec in records if not rec.token and rec.priority > lowest)


def expiry(
    lib: Ours,
    r: redis.Redis,
    n: int,
    concurrency: int,
    log_dir: Path,
    env: dict[str, str],
    ttl_s: float = 5.0,
    result_bytes: int = 100_000,
) -> dict[str, Any]:
    """``n`` jobs whose results are ``result_bytes`` long and kept ``ttl_s``
    seconds; one worker runs them, then stays idle. Redis ``used_memory`` is
    sampled every 0.25 s until every record is gone (the series goes to
    ``<log_dir>/expiry-memory.csv``). Reports the peak, and how long after
    the last record's expiry time (server clock) the last one was deleted."""
    util.fresh(r)
    base = util.used_memory(r)
    spec = lib.mod.blob.options(result_ttl=ttl_s)
    for start in range(0, n, 1000):
        lib.app.enqueue_many([spec.spec(result_bytes) for _ in range(min(1000, n - start))])
    jobs_key, done_key = lib.qk.key("jobs"), lib.qk.key("done")
    rows: list[tuple[float, float, int, int]] = []
    last_expiry_ms = 0.0
    worker = util.WorkerProcess(
        lib.worker_cmd(concurrency), log_dir / f"{lib.name}-expiry.log", env
    )
    try:
        while True:
            sec, usec = r.time()
            now_ms = sec * 1000 + usec / 1000
            records, done = int(r.hlen(jobs_key)), int(r.zcard(done_key))
            last = r.zrange(done_key, -1, -1, withscores=True)
            if last:
                last_expiry_ms = max(last_expiry_ms, float(last[0][1]))
            rows.append((time.time() - worker.spawned, util.used_memory(r) / 1e6, records, done))
            if records == 0:
                break
            if not worker.alive():
                raise RuntimeError(f"worker exited; see {log_dir}")
            if time.time() - worker.spawned > 600:
                raise RuntimeError("records not gone within 600 s")
            time.sleep(0.25)
    finally:
        worker.stop()
    (log_dir / "expiry-memory.csv").write_text(
        "t_s,used_memory_mb,records,done\n"
        + "".join(f"{t:.2f},{mb:.1f},{rec},{d}\n" for t, mb, rec, d in rows)
    )
    return {
        "base_mb": base / 1e6,
        "peak_mb": max(mb for _, mb, _, _ in rows),
        "end_mb": rows[-1][1],
        "all_gone_s": rows[-1][0],
        # When the last record was seen gone, minus its expiry time (server clock);
        # up to one 0.25 s sampling interval late.
        "gone_after_ttl_s": (now_ms - last_expiry_ms) / 1000,
        "samples": len(rows),
    }


def in_process(a: argparse.Namespace) -> dict[str, Any]:
    """A scenario that needs no adapter and no worker process:
    ``middleware_chain`` (:mod:`bench.chain`) or ``cluster``
    (:func:`bench.cluster.trial`, which starts its own cluster)."""
    if a.scenario == "middleware_chain":
        from bench.chain import chain_cost

        return chain_cost(a.n)
    from bench.cluster import trial as cluster_trial

    return cluster_trial(a.lib == "ours-cluster", a.url, a.n, a.concurrency)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("lib")
    p.add_argument("scenario")
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--jobs", type=int, default=1000, help="jobs measured per depth sample")
    p.add_argument("--samples", type=int, default=1, help="samples per depth trial")
    p.add_argument("--slowlog-us", type=int, default=100, help="SLOWLOG threshold (promote)")
    p.add_argument("--procs", type=int, default=1, help="cron processes (cron)")
    p.add_argument("--seconds", type=int, default=8, help="run time, s (cron)")
    p.add_argument("--log-dir", type=Path, default=util.ROOT / "bench" / "results" / "logs")
    a = p.parse_args(argv)

    if a.scenario in ("middleware_chain", "cluster"):
        sys.stdout.write(json.dumps({"samples": [in_process(a)]}) + "\n")
        return 0
    env = dict(os.environ)
    env["BENCH_REDIS_URL"] = a.url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(util.ROOT), env.get("PYTHONPATH")]))
    lib = make(a.lib, a.url)
    if isinstance(lib, Ours):
        env.update(lib.worker_env)
    r = redis.Redis.from_url(a.url)
    samples: list[dict[str, Any]]
    if a.scenario in ("enqueue_one", "enqueue_bulk"):
        samples = [enqueue(lib, r, a.n, bulk=a.scenario == "enqueue_bulk")]
    elif a.scenario == "drain":
        samples = [drain(lib, r, a.n, a.concurrency, a.log_dir, env)]
    elif a.scenario == "latency":
        samples = [latency(lib, r, a.n, a.rate, a.concurrency, a.log_dir, env)]
    elif a.scenario == "floor":
        samples = [floor(r, a.url, a.n)]
    elif a.scenario == "cron":
        from bench.cron import cron_lag

        samples = [cron_lag(r, a.n, a.procs, a.seconds, a.log_dir, env)]
    elif a.scenario in ("memory", "depth", "promote", "expiry"):
        if not isinstance(lib, Ours):
            p.error(f"{a.scenario} is measured for ours only")
        if a.scenario == "memory":
            samples = [memory(lib, r, a.n)]
        elif a.scenario == "depth":
            samples = depth(lib, r, a.n, a.jobs, a.samples)
        elif a.scenario == "expiry":
            samples = [expiry(lib, r, a.n, a.concurrency, a.log_dir, env)]
        else:
            samples = [promote(lib, r, a.n, a.concurrency, a.log_dir, env, a.slowlog_us)]
    else:
        p.error(f"unknown scenario {a.scenario!r}")
    sys.stdout.write(json.dumps({"samples": samples}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
