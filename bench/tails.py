"""Where an idle worker's latency *tail* comes from (issue 16).

``python -m bench.tails --url URL [--n 5000] [--rate 200] [--slow 1]``
runs the ``latency`` scenario's load (one worker, ``bench.app:app``,
concurrency 10, ``stamp`` jobs enqueued one at a time at ``rate``/s) with
the worker and the producer instrumented, then looks at the slowest
``--slow`` per cent of the samples (enqueue call start -> task start) and
counts, for each candidate cause, how many of them it overlapped -- next to
how often it overlapped *any* sample (a cause as common in the fast samples
as in the slow ones explains nothing):

* ``worker gc`` / ``producer gc`` -- a garbage collection (``gc.callbacks``)
  ran in that process during the sample (``gen2``: a full one);
* ``heartbeat`` -- the worker's heartbeat thread was in a beat;
* ``round trip`` -- the dispatcher was in a round trip (reports, leases);
* ``dispatcher path`` -- the job was leased by the dispatcher's round trip,
  not by the waiter's blocking lease (two thread hand-offs);
* ``waiter not waiting`` -- the waiter's blocking call was sent after the
  enqueue call started (the waiter was re-armed late);
* ``waiter/producer/redis runq > X`` -- that thread waited for a CPU (run
  queue, ``/proc/.../schedstat``) more than X ms during the sample (the
  waiter: over its blocking call and up to the task start; the producer:
  over its enqueue call; Redis' main thread: from just before the enqueue
  call to just after it);
* ``redis slow call`` -- SLOWLOG logged a script call of >= 200 us in the
  run (counted for the run, Redis has second-resolution timestamps only).

For each slow sample it also splits the time: ``t0->reply`` (enqueue call
start -> the waiter has its lease reply), ``reply->task``, and the enqueue
call itself. For profiling only; not part of the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

from bench import util

Interval = tuple[float, float]


def runq_ns(tid: int | str = "self", pid: int | str = "self") -> int:
    """Nanoseconds thread ``tid`` of ``pid`` has waited on a run queue."""
    path = f"/proc/{pid}/task/{tid}/schedstat" if tid != "self" else "/proc/thread-self/schedstat"
    with open(path) as f:
        return int(f.read().split()[1])


def gc_recorder(events: array[float]) -> Any:
    """A ``gc.callbacks`` entry appending start, end (wall clock) and
    generation of each collection to ``events`` (flat; an array allocates no
    object the collector tracks)."""
    started: dict[int, float] = {}

    def callback(phase: str, info: dict[str, int]) -> None:
        now = time.time()
        tid = threading.get_ident()
        if phase == "start":
            started[tid] = now
        elif tid in started:
            events.extend((started.pop(tid), now, info["generation"]))

    return callback


def unflatten(flat: array[float], width: int) -> list[list[float]]:
    """A flat array as rows of ``width``."""
    return [list(flat[i : i + width]) for i in range(0, len(flat), width)]


#: Worker records: name -> values per row (flat arrays; see worker_main).
WIDTHS = {"gc": 3, "beat": 3, "round": 3, "idle": 3, "handle": 3, "request": 3, "waits": 4}


def worker_main(out: str) -> None:
    """The instrumented worker (child process); writes what it saw to ``out``.

    Records go to flat float arrays and ``str -> float`` dicts, which the
    garbage collector does not track, so the recording itself adds no
    collection work to the worker."""
    import gc

    import scheduler.worker.worker as worker_mod
    from scheduler.backend import waiting
    from scheduler.worker import heartbeat, pool, rounds
    from scheduler.worker import waiter as waiter_mod

    flat = {name: array("d") for name in WIDTHS}
    per_job: dict[str, dict[str, float]] = {
        k: {} for k in ("call", "reply", "waiter_runq_ms", "thread")
    }
    gc.callbacks.append(gc_recorder(flat["gc"]))

    def timed(cls: Any, name: str, key: str, runq: bool = False) -> None:
        """Record start, end and run-queue ms of each call. Reading the run
        queue is file I/O, which releases the GIL: only around calls that
        do I/O anyway (elsewhere it would let another thread in)."""
        original = getattr(cls, name)
        record = flat[key]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0, q0 = time.time(), runq_ns() if runq else 0
            try:
                return original(*args, **kwargs)
            finally:
                q = (runq_ns() - q0) / 1e6 if runq else 0.0
                record.extend((t0, time.time(), q))

        setattr(cls, name, wrapper)

    timed(heartbeat.Heartbeater, "beat", "beat", runq=True)
    timed(rounds.RoundTrips, "run", "round", runq=True)
    timed(worker_mod.Worker, "_idle", "idle")
    timed(worker_mod.Worker, "_handle", "handle")
    timed(waiter_mod.Waiter, "request", "request")

    original_wait = waiting.BlockingLease.wait_and_lease
    calls, replies, runqs = per_job["call"], per_job["reply"], per_job["waiter_runq_ms"]

    def wait(*args: Any, **kwargs: Any) -> Any:
        call, q0 = time.time(), runq_ns()
        result = original_wait(*args, **kwargs)
        now = time.time()
        # Blocking call to reply read (before the waiter wakes the dispatcher).
        waited = (runq_ns() - q0) / 1e6
        flat["waits"].extend((call, now, len(result[0].jobs), result[1] is not None))
        for job_id, _ in result[0].jobs:
            calls[job_id], replies[job_id], runqs[job_id] = call, now, waited
        return result

    waiting.BlockingLease.wait_and_lease = wait  # type: ignore[method-assign]

    original_run = pool.ThreadRunner._run_job
    threads = per_job["thread"]

    def run_job(self: Any, job: Any, replaceable: bool) -> Any:
        threads[job.id] = time.time()
        return original_run(self, job, replaceable)

    pool.ThreadRunner._run_job = run_job  # type: ignore[method-assign]

    real_exit = os._exit

    def dump_and_exit(code: int) -> None:
        seen: dict[str, Any] = {name: unflatten(flat[name], w) for name, w in WIDTHS.items()}
        jobs: dict[str, dict[str, float]] = {}
        for field, values in per_job.items():
            for job_id, value in values.items():
                jobs.setdefault(job_id, {})[field] = value
        seen["jobs"] = jobs
        Path(out).write_text(json.dumps(seen))
        real_exit(code)

    os._exit = dump_and_exit  # the CLI ends with os._exit
    from scheduler.cli.main import main

    sys.argv = ["scheduler", "worker", "bench.app:app", "--concurrency", "10"]
    sys.argv += ["--log-level", "WARNING"]
    main()


def overlaps(intervals: list[Interval], a: float, b: float) -> float:
    """Total time (s) the intervals overlap [a, b]."""
    return sum(max(0.0, min(e, b) - max(s, a)) for s, e in intervals)


def enqueue_and_lease_us(calls: list[tuple[str, int]]) -> list[float]:
    """Per job, in enqueue order: its ``enqueue_one`` call's time in Redis
    plus that of the next ``lease`` call (the waiter's, which Redis runs
    right behind it), us."""
    out: list[float] = []
    pending = False
    for name, us in calls:
        if name == "enqueue_one":
            out.append(float(us))
            pending = True
        elif name == "lease" and pending:
            out[-1] += us
            pending = False
    return out


def measure(
    url: str, n: int, rate: float, slow_pct: float, script_times: bool = False
) -> dict[str, Any]:
    """Run the worker and the producer; the tail analysis. ``script_times``:
    log every script call (SLOWLOG at 0 us) to split out, per job, the
    enqueue and lease scripts' time in Redis (the log costs a little)."""
    import gc

    os.environ["BENCH_REDIS_URL"] = url
    import redis

    from bench import app as bench_app

    r = redis.Redis.from_url(url)
    r.flushall()
    r.config_resetstat()
    redis_pid = int(r.info("server")["process_id"])
    redis_tid = redis_pid  # the main thread runs the commands
    out = tempfile.mktemp(prefix="tails-", suffix=".json")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(util.ROOT), os.environ.get("PYTHONPATH", "")])
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.tails", "--worker", out], cwd=util.ROOT, env=env
    )
    producer_flat: array[float] = array("d")
    slow_calls: list[tuple[str, int]] = []
    script_us: list[float] | None = None
    from bench.trial import script_shas

    shas = script_shas()
    try:
        bench_app.stamp.enqueue().result(timeout=60)
        time.sleep(0.5)  # idle, blocked on Redis
        old = r.config_get("slowlog-*")
        max_len = 1_000_000 if script_times else 10_000
        r.config_set("slowlog-log-slower-than", 0 if script_times else 200)
        r.config_set("slowlog-max-len", max_len)
        r.slowlog_reset()
        gc.callbacks.append(gc_recorder(producer_flat))
        sent = []
        begin = time.perf_counter()
        for i in range(n):
            while (left := begin + i / rate - time.perf_counter()) > 0:
                time.sleep(left)
            rq0, pq0 = runq_ns(redis_tid, redis_pid), runq_ns()
            t0 = time.time()
            handle = bench_app.stamp.enqueue()
            t1 = time.time()
            pq1, rq1 = runq_ns(), runq_ns(redis_tid, redis_pid)
            sent.append((handle, t0, t1, (pq1 - pq0) / 1e6, (rq1 - rq0) / 1e6))
        gc.callbacks.pop()
        starts = [float(h.result(timeout=60)) for h, *_ in sent]
        calls = []  # (script, us), oldest first
        for e in reversed(r.slowlog_get(max_len)):
            if e["command"][:8].upper() == b"EVALSHA ":
                name = shas.get(e["command"][8:48].decode(errors="replace"), "?")
                calls.append((name, int(e["duration"])))
        slow_calls = [c for c in calls if c[1] >= 200]
        if script_times:
            script_us = enqueue_and_lease_us(calls)
        r.config_set("slowlog-log-slower-than", old["slowlog-log-slower-than"])
        r.config_set("slowlog-max-len", old["slowlog-max-len"])
        evalsha = r.info("commandstats").get("cmdstat_evalsha", {})
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)
    seen = json.loads(Path(out).read_text())
    os.unlink(out)
    producer_gc = unflatten(producer_flat, 3)
    if script_us is not None and len(script_us) != len(sent):
        script_us = None  # the log overflowed or missed calls: not attributable
    res = analyse(seen, sent, starts, producer_gc, slow_calls, evalsha, slow_pct, script_us)
    res["raw"] = {
        "seen": seen,
        "sent": [(h.id, t0, t1, pq, rq) for h, t0, t1, pq, rq in sent],
        "starts": starts,
        "producer_gc": producer_gc,
        "slow_calls": slow_calls,
    }
    return res


def analyse(
    seen: dict[str, Any],
    sent: list[tuple[Any, float, float, float, float]],
    starts: list[float],
    producer_gc: list[list[Any]],
    slow_calls: list[tuple[str, int]],
    evalsha: dict[str, Any],
    slow_pct: float,
    script_us: list[float] | None = None,
) -> dict[str, Any]:
    """Per-sample components (ms) and flags; each of the slowest ``slow_pct``
    % is attributed to its largest component if that is at least half its
    excess over the median (else "unattributed")."""
    jobs = seen["jobs"]
    window = sent[0][1] - 0.1, starts[-1] + 0.1
    in_window = [x for x in seen["gc"] if x[1] >= window[0] and x[0] <= window[1]]
    wgc: list[Interval] = [(s, e) for s, e, _ in in_window]
    pgc: list[Interval] = [(s, e) for s, e, _ in producer_gc]
    beats: list[Interval] = [(s, e) for s, e, _ in seen["beat"]]
    rounds_ = seen["round"]
    totals = [(start - t0) * 1000 for (_, t0, *_), start in zip(sent, starts, strict=True)]
    p50 = util.percentile(totals, 50)
    rows = []
    script_median = util.percentile(script_us, 50) if script_us else 0.0
    for i, ((handle, t0, t1, pq, rq), start) in enumerate(zip(sent, starts, strict=True)):
        rec = jobs.get(handle.id, {})
        a, b = t0, start
        inside = [x for x in rounds_ if x[1] > a and x[0] < b]
        parts = {
            "producer runq": pq,
            "redis runq": rq,
            "waiter runq": rec.get("waiter_runq_ms") or 0.0,
            "worker gc": overlaps(wgc, a, b) * 1000,
            "producer gc": overlaps(pgc, a, t1) * 1000,
            "dispatcher runq": sum(q for _, _, q in inside),
            "round trip (dispatcher path)": (
                overlaps([(x[0], x[1]) for x in inside], a, b) * 1000 if "reply" not in rec else 0.0
            ),
            "heartbeat": overlaps(beats, a, b) * 1000,
            "redis scripts over median": (
                max(0.0, script_us[i] - script_median) / 1000 if script_us else 0.0
            ),
        }
        flags = {
            "worker gc": parts["worker gc"] > 0,
            "worker gc gen2": any(g == 2 and e > a and s < b for s, e, g in in_window),
            "producer gc": parts["producer gc"] > 0,
            "heartbeat": parts["heartbeat"] > 0,
            "round trip": bool(inside),
            "dispatcher path": "reply" not in rec,
            "waiter not waiting": "call" in rec and rec["call"] > t0,
            "waiter runq > 0.5 ms": parts["waiter runq"] > 0.5,
            "producer runq > 0.5 ms": pq > 0.5,
            "redis runq > 0.5 ms": rq > 0.5,
        }
        total = (start - t0) * 1000
        top = max(parts, key=lambda k: parts[k])
        cause = top if parts[top] >= 0.5 * (total - p50) else "unattributed"
        rows.append(
            {
                "total": total,
                "call": (t1 - t0) * 1000,
                "t0->reply": (rec["reply"] - t0) * 1000 if "reply" in rec else None,
                "reply->task": (start - rec["reply"]) * 1000 if "reply" in rec else None,
                "parts": parts,
                "cause": cause,
                "flags": flags,
            }
        )
    rows.sort(key=lambda x: x["total"], reverse=True)
    k = max(1, round(len(rows) * slow_pct / 100))
    slow = rows[:k]
    names = list(rows[0]["flags"])
    causes: dict[str, int] = {}
    for x in slow:
        causes[x["cause"]] = causes.get(x["cause"], 0) + 1
    return {
        "n": len(rows),
        "slow_k": k,
        "p50": p50,
        "p90": util.percentile(totals, 90),
        "p99": util.percentile(totals, 99),
        "max": max(totals),
        "causes_slow": causes,
        "flags_slow": {f: sum(x["flags"][f] for x in slow) for f in names},
        "flags_all": {f: sum(x["flags"][f] for x in rows) for f in names},
        "worker_gc": _gc_summary(in_window),
        "worker_gc_startup": _gc_summary([x for x in seen["gc"] if x[1] < window[0]]),
        "producer_gc": _gc_summary(producer_gc),
        "beats": len(beats),
        "rounds": len(rounds_),
        "waits": len([w for w in seen["waits"] if window[0] <= w[0] <= window[1]]),
        "waits_woken_empty": len(
            [w for w in seen["waits"] if window[0] <= w[0] <= window[1] and w[3] and not w[2]]
        ),
        "redis_script_calls_over_200us": len(slow_calls),
        "redis_longest_script_us": max((d for _, d in slow_calls), default=0),
        "redis_slow_calls_by_script": {
            name: sum(1 for s, _ in slow_calls if s == name) for name in {s for s, _ in slow_calls}
        },
        "redis_evalsha_usec_per_call": evalsha.get("usec_per_call"),
        "redis_enqueue_lease_us": (
            {q: util.percentile(script_us, q) for q in (50, 90, 99, 100)} if script_us else None
        ),
        "slowest": slow[:15],
    }


def _gc_summary(events: list[list[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for g in (0, 1, 2):
        ms = [(e - s) * 1000 for s, e, gen in events if gen == g]
        out[f"gen{g}"] = {"count": len(ms), "max_ms": max(ms) if ms else 0.0}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--slow", type=float, default=1.0, help="slowest per cent analysed")
    p.add_argument(
        "--script-times",
        action="store_true",
        help="log every script call (SLOWLOG 0) and attribute the enqueue+lease time",
    )
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker_main(a.worker)
        return
    res = measure(a.url, a.n, a.rate, a.slow, a.script_times)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    print(
        f"n={res['n']} p50={res['p50']:.3f} p90={res['p90']:.3f} p99={res['p99']:.3f} "
        f"max={res['max']:.2f} ms; slowest {res['slow_k']} analysed"
    )
    print("slowest samples by largest component:", res["causes_slow"])
    print(f"{'flag':28s} {'slow':>6s} {'all':>6s}")
    for f, c in res["flags_slow"].items():
        print(f"{f:28s} {c:6d} {res['flags_all'][f]:6d}")
    print(f"worker gc {res['worker_gc']} (start-up: {res['worker_gc_startup']})")
    print(f"producer gc {res['producer_gc']}")
    print(
        f"beats {res['beats']}, round trips {res['rounds']}, waits {res['waits']} "
        f"(woken with no job: {res['waits_woken_empty']}), redis script calls >= 200 us: "
        f"{res['redis_script_calls_over_200us']} (longest {res['redis_longest_script_us']} us), "
        f"evalsha {res['redis_evalsha_usec_per_call']} us/call; "
        f"by script {res['redis_slow_calls_by_script']}"
    )
    if res["redis_enqueue_lease_us"]:
        print("enqueue + lease script time in Redis per job, us (p50/p90/p99/max):", end=" ")
        print(" / ".join(f"{v:.0f}" for v in res["redis_enqueue_lease_us"].values()))
    print("slowest: total call t0->reply reply->task | cause | components >= 0.1 ms")
    for x in res["slowest"]:

        def fmt(v: float | None) -> str:
            return "   -  " if v is None else f"{v:6.2f}"

        parts = ", ".join(f"{k} {v:.2f}" for k, v in x["parts"].items() if v >= 0.1)
        print(
            f"  {x['total']:6.2f} {x['call']:6.2f} {fmt(x['t0->reply'])} {fmt(x['reply->task'])}"
            f" | {x['cause']} | {parts}"
        )


if __name__ == "__main__":
    main()
