"""Where an idle worker's latency *tail* comes from (issue 16).

``python -m bench.tails --url URL [--n 5000] [--rate 200] [--slow 1]
[--script-times] [--json FILE]`` runs the ``latency`` scenario's load (one
worker, ``bench.app:app``, concurrency 10, ``stamp`` jobs enqueued one at a
time at ``rate``/s) with the worker and the producer instrumented, and
splits each sample (enqueue call start -> task start, ms) into components:

* ``producer runq`` / ``redis runq`` / ``waiter runq`` -- time that thread
  was runnable but waited for a CPU (``/proc/.../schedstat``): the producer
  over its enqueue call, Redis' main thread from just before to just after
  it, the waiter over its blocking call until it has the lease reply;
* ``worker gc`` / ``producer gc`` -- garbage collection (``gc.callbacks``)
  in that process during the sample;
* ``dispatcher runq`` and ``round trip (dispatcher path)`` -- the
  dispatcher's round trips in progress (their run-queue waits; and, for a
  job the round trip leased rather than the waiter, their time);
* ``heartbeat`` -- a beat (and registry write) in progress;
* ``redis scripts over median`` (``--script-times``: every script call is
  logged, SLOWLOG at 0 us, which slows each call a little) -- the job's
  enqueue and lease script time in Redis above its median.

Each of the slowest ``--slow`` per cent is attributed to its largest
component if that is at least half its excess over the median, else
"unattributed"; flags (a round trip overlapped, the dispatcher path, the
waiter re-armed only after the enqueue started, run-queue waits over 0.5 ms,
...) are counted among the slow samples *and* among all (a cause as common
in the fast samples as in the slow ones explains nothing). It also prints the
worker's waits per job and empty woken leases, GC counts and longest pauses
(start-up apart), and the split ``t0->reply`` / ``reply->task`` of the
slowest samples.

The worker's records go to flat arrays and ``str -> float`` dicts (nothing
the collector tracks), and ``/proc`` is read only around calls that do I/O
anyway (a read releases the GIL and would let another thread in). Run it
against a commit from an export of that commit (the package, and its Lua
scripts, imported from the current directory first). For profiling only;
not part of the suite. See docs/benchmarks.md, "Issue 16: the latency tail".
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
from bench.handoffs import serve_then_dump
from bench.tailreport import analyse, print_report


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

    def dump() -> None:
        seen: dict[str, Any] = {name: unflatten(flat[name], w) for name, w in WIDTHS.items()}
        jobs: dict[str, dict[str, float]] = {}
        for field, values in per_job.items():
            for job_id, value in values.items():
                jobs.setdefault(job_id, {})[field] = value
        seen["jobs"] = jobs
        Path(out).write_text(json.dumps(seen))

    serve_then_dump(dump)


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
    print_report(res)


if __name__ == "__main__":
    main()
