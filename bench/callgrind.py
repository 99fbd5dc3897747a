"""Instructions Redis executes per job on the drain path, counted by callgrind.

``python -m bench.callgrind [--jobs N] [--batch B]`` (run from a checkout or
an export whose ``scheduler`` package it should measure) starts its own
``redis-server`` under ``valgrind --tool=callgrind`` with ``--hz 1`` (few
timer callbacks in the window), pre-queues N + 100 no-op jobs, leases and
completes 100 (warm-up: script load), zeroes the counters, then

1. leases N jobs, B per ``lease`` call (dump "lease");
2. completes them, B per ``complete`` call carrying the starts of the same
   jobs, as the worker sends them (dump "complete"),

and prints the instructions per job of each phase. Unlike wall-clock
figures these do not move with the machine's load (repeat runs agree
within about 1%), so small changes to the scripts can be compared on a
busy machine. Needs ``valgrind`` and ``callgrind_control`` on ``PATH``.
See docs/benchmarks.md, "Issue 16: drain".
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.libs import make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _totals(out: Path) -> dict[str, int]:
    """Dump trigger name -> instructions (the ``summary:`` line of each dump)."""
    found: dict[str, int] = {}
    for path in sorted(out.glob("cg.*")):
        trigger, summary = None, None
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("desc: Trigger:") and " dump " in line:
                trigger = line.rsplit(" ", 1)[-1]
            elif line.startswith("summary:"):
                summary = int(line.split()[1])
        if trigger and summary is not None:
            found[trigger] = summary
    return found


def measure(jobs: int, batch: int) -> dict[str, float]:
    """Instructions per job of the lease and the complete phase (see above)."""
    port = _free_port()
    out = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/cg.%p",
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--hz",
            "1",
            "--dynamic-hz",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        r = redis.Redis.from_url(url)
        for _ in range(600):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        os.environ["BENCH_REDIS_URL"] = url
        from scheduler.backend.record import parse_record

        lib = make("ours", url)
        scripts, qk = lib.app.scripts, lib.qk
        lib.prefill(jobs + 100)

        def lease(n: int, tag: str) -> list[list[tuple[str, str]]]:
            groups = []
            for i in range(n // batch):
                reply = scripts.lease(qk, batch, "cg", f"cg:{tag}{i}")
                groups.append([(j, parse_record(j, text).token) for j, text in reply.jobs])
            return groups

        def complete(groups: list[list[tuple[str, str]]]) -> None:
            for leases in groups:
                items = [(j, token, "null") for j, token in leases]
                try:
                    call = scripts.complete_call(qk, items, leases)
                except TypeError:  # a commit before the starts rode on complete
                    call = scripts.complete_call(qk, items)  # type: ignore[call-arg]
                scripts.run_many([call])

        def control(*args: str) -> None:
            subprocess.run(
                ["callgrind_control", *args, str(server.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )

        complete(lease(100, "warm"))
        control("-z")
        groups = lease(jobs, "x")
        control("-d", "lease")
        complete(groups)
        control("-d", "complete")
    finally:
        server.terminate()
        server.wait()
    totals = _totals(out)
    shutil.rmtree(out, ignore_errors=True)
    return {phase: totals.get(phase, 0) / jobs for phase in ("lease", "complete")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--batch", type=int, default=10)
    a = p.parse_args(argv)
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        p.error("needs valgrind and callgrind_control on PATH")
    res = measure(a.jobs, a.batch)
    total = sum(res.values())
    parts = ", ".join(f"{k} {v / 1000:.1f}k" for k, v in res.items())
    sys.stdout.write(f"redis-server instructions per job: {parts}, total {total / 1000:.1f}k\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
