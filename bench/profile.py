"""Profiles of our drain and enqueue paths: where the time goes.

Run by ``bash bench/run.sh --profile`` (after the scenarios) or
``bash bench/run.sh --profile-only``. Writes, under the run's results
directory, collapsed stack files (open them in https://www.speedscope.app),
``profile.json`` and ``profile.md``.

What is measured:

1. **Drain, py-spy (all active threads)**: N jobs pre-queued with the queue
   paused, the worker started and py-spy attached, then the queue resumed;
   sampling stops when the last job is done. Worker CPU (psutil) and Redis
   CPU (INFO cpu) over the same window.
2. **Drain, py-spy --gil**: the same, sampling only the thread holding the
   GIL -- what the interpreter is busy with (the worker is GIL-bound).
3. **Drain, Redis side**: the same drain without py-spy, with SLOWLOG at
   threshold 0 (so every script call and every command inside it is logged;
   this slows Redis a little, so read shares, not absolute figures) plus
   ``INFO commandstats``: time per script and per command inside scripts.
4. **Enqueue one at a time / bulk, py-spy**: the producer process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench import stacks, util
from bench.libs import BIN, Ours
from bench.trial import script_shas

RATE = 250  # py-spy samples per second

WORKER_FUNCS = [
    "Dispatcher._loop",
    "Dispatcher._take_messages",
    "Dispatcher._dispatch",
    "Dispatcher._take_reply",
    "Dispatcher._start_buffered",
    "Dispatcher._finish",
    "RoundTrips.run",
    "Scripts.lease",
    "Scripts.complete",
    "JobBook.add",
    "JobBook.drop_all",
    "ThreadRunner.submit",
    "ThreadRunner._run_job",
    "run_task",
    "Heartbeater.beat",
    "Waiter._run",
    "read_response",
    "send_packed_command",
]

ENQUEUE_FUNCS = [
    "Scheduler.enqueue",
    "Scheduler.enqueue_many",
    "Scheduler._build",
    "encode_payload",
    "resolve_priority",
    "EnqueueOptions.__init__",
    "Scripts.enqueue",
    "EnqueueItem.argv",
    "Script.__call__",
    "read_response",
    "send_packed_command",
    "Job.__init__",
    "Task.spec",
]


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["BENCH_REDIS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(util.ROOT), env.get("PYTHONPATH")]))
    return env


def _paused_worker(lib: Ours, r: redis.Redis, n: int, out: Path, tag: str) -> util.WorkerProcess:
    """Prefill ``n`` jobs into a paused queue and start a worker that waits on it."""
    util.fresh(r)
    lib.prefill(n)
    lib.app.pause(lib.qk.queue)
    worker = util.WorkerProcess(
        lib.worker_cmd(10), out / "logs" / f"profile-{tag}.log", _env(lib.url)
    )
    util.wait_until(
        lambda: int(r.zcard(lib.app.keys.workers)) >= 1, timeout=30, what="worker registered"
    )
    time.sleep(0.3)
    return worker


def drain_pyspy(lib: Ours, r: redis.Redis, n: int, out: Path, *, gil: bool) -> dict[str, Any]:
    tag = "drain-gil" if gil else "drain"
    worker = _paused_worker(lib, r, n, out, tag)
    path = out / f"profile-{tag}.collapsed.txt"
    cmd = [
        str(BIN / "py-spy"),
        "record",
        "--pid",
        str(worker.proc.pid),
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--output",
        str(path),
        "--nonblocking",
    ]
    if gil:
        cmd.append("--gil")
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # py-spy attached
        meter = util.RedisMeter(r)
        meter.start()
        cpu0 = worker.cpu_s()
        t0 = time.time()
        lib.app.resume(lib.qk.queue)
        t1 = util.wait_until(lambda: lib.done_count() >= n, timeout=600, what="drained")
        cpu = worker.cpu_s() - cpu0
        stats = meter.stop(n)
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            _, err = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        worker.stop()
    if not path.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
    wall = t1 - t0
    cs = stats["commandstats"]
    skip = {"evalsha", "info", "config|resetstat"}
    inner = {k: v for k, v in cs.items() if k not in skip}
    evalsha_us = cs.get("evalsha", {}).get("usec", 0.0)
    inner_us = sum(v["usec"] for v in inner.values())
    return {
        "file": path.name,
        "evalsha_us_per_job": evalsha_us / n,
        "commands_us_per_job_total": inner_us / n,
        "commands_us_per_job": {
            k: v["usec"] / n for k, v in sorted(inner.items(), key=lambda kv: -kv[1]["usec"])
        },
        "command_calls_per_job": {k: v["calls"] / n for k, v in inner.items()},
        "jobs": n,
        "wall_s": wall,
        "jobs_per_s_under_profiler": n / wall,
        "worker_cpu_s": cpu,
        "worker_cpu_us_per_job": cpu / n * 1e6,
        "worker_cpu_util_pct": cpu / wall * 100,
        "redis_cpu_us_per_job": stats["redis_cpu_us_per_job"],
        "redis_cpu_util_pct": stats["redis_cpu_s"] / wall * 100,
        "summary": stacks.summarize(path),
        "functions_pct": stacks.inclusive_of(path, WORKER_FUNCS),
    }


def drain_redis_side(lib: Ours, r: redis.Redis, n: int, out: Path) -> dict[str, Any]:
    """Per-script and per-inner-command Redis time during a drain (SLOWLOG at 0)."""
    shas = script_shas()
    worker = _paused_worker(lib, r, n, out, "drain-redis")
    old = r.config_get("slowlog-*")
    try:
        r.config_set("slowlog-max-len", 3_000_000)
        r.config_set("slowlog-log-slower-than", 0)
        r.slowlog_reset()
        meter = util.RedisMeter(r)
        meter.start()
        t0 = time.time()
        lib.app.resume(lib.qk.queue)
        t1 = util.wait_until(lambda: lib.done_count() >= n, timeout=600, what="drained")
        r.config_set("slowlog-log-slower-than", old["slowlog-log-slower-than"])
        stats = meter.stop(n)
        entries = r.slowlog_get(-1)
        r.slowlog_reset()
    finally:
        r.config_set("slowlog-log-slower-than", old["slowlog-log-slower-than"])
        r.config_set("slowlog-max-len", old["slowlog-max-len"])
        worker.stop()
    per_script: dict[str, list[int]] = {}
    for e in entries:
        cmd = e["command"]
        if cmd[:8].upper() == b"EVALSHA ":
            name = shas.get(cmd[8:48].decode(errors="replace"), "unknown")
            per_script.setdefault(name, []).append(int(e["duration"]))
    scripts = {
        name: {
            "calls": len(ds),
            "total_us": sum(ds),
            "us_per_call": sum(ds) / len(ds),
            "us_per_job": sum(ds) / n,
            "p50_us": util.percentile(ds, 50),
            "p99_us": util.percentile(ds, 99),
            "max_us": max(ds),
        }
        for name, ds in per_script.items()
    }
    cs = stats["commandstats"]
    evalsha_us = cs.get("evalsha", {}).get("usec", 0.0)
    skip = {"evalsha", "info", "config|resetstat", "config|set", "slowlog|reset", "slowlog|get"}
    inner = {k: v for k, v in cs.items() if k not in skip}
    inner_us = sum(v["usec"] for v in inner.values())
    return {
        "jobs": n,
        "wall_s": t1 - t0,
        "slowlog_entries": len(entries),
        "scripts": scripts,
        "evalsha_us_per_job": evalsha_us / n,
        "commands_us_per_job": {
            k: v["usec"] / n for k, v in sorted(inner.items(), key=lambda kv: -kv[1]["usec"])
        },
        "command_calls_per_job": {k: v["calls"] / n for k, v in inner.items()},
        "inner_and_other_commands_us_per_job": inner_us / n,
        "redis_cpu_us_per_job": stats["redis_cpu_us_per_job"],
    }


def script_anatomy(lib: Ours, r: redis.Redis, calls: int = 3000) -> dict[str, Any]:
    """Redis time of one enqueue script call (1 job), taken apart: a trivial
    script with the same KEYS/ARGV, a script of only the included libraries,
    the full script, and the commands it runs (all from INFO commandstats)."""
    _mod = util.scheduler_module("scripts")
    load_script_text = _mod.load_script_text

    keys = lib.qk.standard()
    args: list[Any] = [10_000, 1, *["x"] * 9]
    text = load_script_text("enqueue")
    # The libraries end where the script's own code starts (older scripts
    # set EVENTS_MAXLEN; today's call events_init).
    marker = "\nevents_init(" if "\nevents_init(" in text else "EVENTS_MAXLEN = tonumber(ARGV[1])"
    libs_only = text.split(marker)[0] + "\nreturn 1\n"

    def per_call(script_text: str) -> float:
        script = r.register_script(script_text)
        script(keys=keys, args=args)  # loaded
        r.config_resetstat()
        for _ in range(calls):
            script(keys=keys, args=args)
        return float(r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"])

    util.fresh(r)
    out = {"trivial_script_us": per_call("return 1"), "includes_only_us": per_call(libs_only)}
    util.fresh(r)
    lib.enqueue_one(100)
    r.config_resetstat()
    cpu0 = util.redis_cpu(r)
    lib.enqueue_one(calls)
    cpu = util.redis_cpu(r) - cpu0
    cs = util.commandstats(r)
    out["enqueue_script_us"] = cs["evalsha"]["usec_per_call"]
    out["enqueue_commands_us"] = (
        sum(v["usec"] for k, v in cs.items() if k not in ("evalsha", "config|resetstat", "info"))
        / calls
    )
    out["enqueue_redis_cpu_us"] = cpu / calls * 1e6
    out["lua_logic_us"] = (
        out["enqueue_script_us"] - out["includes_only_us"] - out["enqueue_commands_us"]
    )
    return out


def batch_sweep(lib: Ours, r: redis.Redis, jobs: int = 5000) -> list[dict[str, float]]:
    """Lease+complete at the script level (no worker) with batches of k jobs per
    call: how the Redis cost per job falls as the per-call cost is shared."""
    from bench.trial import _lease_complete

    out = []
    for k in (1, 2, 5, 10, 20, 50, 100):
        util.fresh(r)
        lib.prefill(jobs)
        meter = util.RedisMeter(r)
        meter.start()
        done, wall = _lease_complete(lib, jobs, f"sweep-{k}", k)
        stats = meter.stop(done)
        ev = stats["scripts"].get("evalsha", {})
        out.append(
            {
                "batch": k,
                "jobs_per_s": done / wall,
                "script_us_per_job": ev.get("usec", 0.0) / done,
                "script_us_per_call": ev.get("usec_per_call", 0.0),
                "redis_cpu_us_per_job": stats["redis_cpu_us_per_job"],
            }
        )
    return out


def enqueue_pyspy(url: str, n: int, out: Path, scenario: str) -> dict[str, Any]:
    path = out / f"profile-{scenario}.collapsed.txt"
    cmd = [
        str(BIN / "py-spy"),
        "record",
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--output",
        str(path),
        "--nonblocking",
        "--",
        sys.executable,
        "-m",
        "bench.trial",
        "ours",
        scenario,
        "--url",
        url,
        "--n",
        str(n),
    ]
    proc = subprocess.run(
        cmd, cwd=util.ROOT, env=_env(url), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not path.exists():
        raise RuntimeError(f"profiling {scenario} failed: {proc.stderr[-2000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith('{"samples"'))
    sample = json.loads(line)["samples"][0]
    marker = "enqueue_one (bench/libs.py" if scenario == "enqueue_one" else "enqueue_bulk ("

    def keep(frames: list[str]) -> bool:
        return any(marker in f for f in frames)

    return {
        "file": path.name,
        "jobs": n,
        "jobs_per_s_under_profiler": sample["jobs_per_s"],
        "client_cpu_us_per_job": sample["client_cpu_us_per_job"],
        "client_wall_us_per_job": sample["client_wall_us_per_job"],
        "redis_cpu_us_per_job": sample["redis_cpu_us_per_job"],
        "evalsha_us_per_call": sample["scripts"].get("evalsha", {}).get("usec_per_call"),
        "evalsha_calls": sample["scripts"].get("evalsha", {}).get("calls"),
        "summary": stacks.summarize(path, keep),
        "functions_pct": stacks.inclusive_of(path, ENQUEUE_FUNCS, keep),
    }


def run(url: str, out: Path, *, drain_n: int, enqueue_n: int) -> dict[str, Any]:
    """All profiles; writes ``profile.json`` and ``profile.md`` into ``out``."""
    os.environ["BENCH_REDIS_URL"] = url
    lib = Ours(url)
    r = redis.Redis.from_url(url)
    result: dict[str, Any] = {"load_start": util.load()}
    print("profile: drain (py-spy, all threads)", file=sys.stderr)
    result["drain"] = drain_pyspy(lib, r, drain_n, out, gil=False)
    print("profile: drain (py-spy --gil)", file=sys.stderr)
    result["drain_gil"] = drain_pyspy(lib, r, drain_n, out, gil=True)
    print("profile: drain (Redis side, SLOWLOG 0 + commandstats)", file=sys.stderr)
    result["drain_redis"] = drain_redis_side(lib, r, drain_n, out)
    print("profile: lease+complete batch sweep", file=sys.stderr)
    result["batch_sweep"] = batch_sweep(lib, r)
    print("profile: enqueue script anatomy", file=sys.stderr)
    result["anatomy"] = script_anatomy(lib, r)
    print("profile: enqueue one at a time (py-spy)", file=sys.stderr)
    result["enqueue_one"] = enqueue_pyspy(url, enqueue_n, out, "enqueue_one")
    print("profile: enqueue bulk (py-spy)", file=sys.stderr)
    result["enqueue_bulk"] = enqueue_pyspy(url, enqueue_n, out, "enqueue_bulk")
    result["load_end"] = util.load()
    (out / "profile.json").write_text(json.dumps(result, indent=1))
    (out / "profile.md").write_text(render(result))
    return result


def render(p: dict[str, Any]) -> str:
    d, g, rs = p["drain"], p["drain_gil"], p["drain_redis"]
    lines = [
        "## Profile",
        "",
        f"Load at start: `{p['load_start']['uptime']}`",
        "",
        "### Drain (one worker, concurrency 10)",
        "",
        "| | value |",
        "|---|---:|",
        f"| jobs/s under py-spy (all threads / --gil) | {d['jobs_per_s_under_profiler']:,.0f}"
        f" / {g['jobs_per_s_under_profiler']:,.0f} |",
        f"| worker CPU per job | {d['worker_cpu_us_per_job']:.0f} us |",
        f"| worker CPU utilisation | {d['worker_cpu_util_pct']:.0f} % of one core |",
        f"| Redis CPU per job | {d['redis_cpu_us_per_job']:.0f} us |",
        f"| Redis CPU utilisation | {d['redis_cpu_util_pct']:.0f} % of one core |",
        f"| Redis script time per job (EVALSHA, INFO commandstats) "
        f"| {d['evalsha_us_per_job']:.1f} us |",
        f"| of which commands run inside the scripts | {d['commands_us_per_job_total']:.1f} us |",
        "",
        "Redis time per script (SLOWLOG threshold 0; inflates absolute times a little):",
        "",
        "| script | calls | us/call p50 | p99 | max | us per job |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in sorted(rs["scripts"].items(), key=lambda kv: -kv[1]["total_us"]):
        lines.append(
            f"| {name} | {s['calls']} | {s['p50_us']:.0f} | {s['p99_us']:.0f} | {s['max_us']} |"
            f" {s['us_per_job']:.1f} |"
        )
    lines += [
        "",
        "Commands (inside scripts and direct), us per job (INFO commandstats):",
        "",
        "| command | us/job | calls/job |",
        "|---|---:|---:|",
    ]
    for name, us in list(d["commands_us_per_job"].items())[:15]:
        lines.append(f"| {name} | {us:.2f} | {d['command_calls_per_job'][name]:.2f} |")
    lines += [
        "",
        "Lease + complete at the script level (one client, no worker), k jobs per call:",
        "",
        "| jobs per call | jobs/s | script us per job | script us per call (lease or complete) "
        "| Redis CPU us per job |",
        "|---:|---:|---:|---:|---:|",
    ]
    for b in p.get("batch_sweep", []):
        lines.append(
            f"| {b['batch']} | {b['jobs_per_s']:,.0f} | {b['script_us_per_job']:.1f} | "
            f"{b['script_us_per_call']:.0f} | {b['redis_cpu_us_per_job']:.1f} |"
        )
    an = p["anatomy"]
    lines += [
        "",
        "One enqueue script call (1 job), taken apart (us per call, INFO commandstats):",
        "",
        "| part | us |",
        "|---|---:|",
        f"| EVALSHA of `return 1`, same 10 KEYS / 11 ARGV | {an['trivial_script_us']:.1f} |",
        f"| script of only the included lib/*.lua (defines ~30 locals) | "
        f"{an['includes_only_us']:.1f} |",
        f"| full enqueue script | {an['enqueue_script_us']:.1f} |",
        f"| commands it runs (HEXISTS, HINCRBY x2, ZADD, HSET, XADD, ...) | "
        f"{an['enqueue_commands_us']:.1f} |",
        f"| Lua logic left (full - includes - commands) | {an['lua_logic_us']:.1f} |",
        f"| Redis CPU per enqueue call (protocol, networking, script) | "
        f"{an['enqueue_redis_cpu_us']:.1f} |",
    ]
    lines += ["", "Worker functions, inclusive % of samples (all threads / GIL holder):", ""]
    lines += ["| function | all threads | GIL |", "|---|---:|---:|"]
    for name in WORKER_FUNCS:
        lines.append(
            f"| `{name}` | {d['functions_pct'][name]:.1f} | {g['functions_pct'][name]:.1f} |"
        )
    lines += ["", stacks.markdown("Drain, all active threads", d["summary"])]
    lines += [stacks.markdown("Drain, GIL holder only (--gil)", g["summary"])]
    for key, title in (("enqueue_one", "Enqueue one at a time"), ("enqueue_bulk", "Enqueue bulk")):
        e = p[key]
        lines += [
            f"### {title}",
            "",
            f"{e['jobs']} jobs; {e['jobs_per_s_under_profiler']:,.0f} jobs/s under py-spy; "
            f"client CPU {e['client_cpu_us_per_job']:.0f} us/job of "
            f"{e['client_wall_us_per_job']:.0f} us wall; Redis CPU "
            f"{e['redis_cpu_us_per_job']:.0f} us/job; EVALSHA {e['evalsha_us_per_call']:.0f} "
            f"us/call x {e['evalsha_calls']:.0f} calls.",
            "",
            "| function | inclusive % |",
            "|---|---:|",
        ]
        lines += [f"| `{k}` | {v:.1f} |" for k, v in e["functions_pct"].items()]
        lines += ["", stacks.markdown(f"{title}, producer", e["summary"])]
    return "\n".join(lines) + "\n"
