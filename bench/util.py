"""Helpers shared by the orchestrator and the trials: statistics, Redis INFO,
machine facts, and worker processes."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent


# -- statistics ---------------------------------------------------------------


def summarize(samples: Sequence[float]) -> dict[str, Any]:
    """Median and spread of a trial's repeated values.

    ``spread_pct`` is (max - min) / median in percent: the whole range of the
    runs, not a confidence interval (3 runs cannot give one).
    """
    values = [float(v) for v in samples]
    if not values:
        return {"n": 0}
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "n": len(values),
        "median": med,
        "min": lo,
        "max": hi,
        "spread_pct": (hi - lo) / med * 100 if med else 0.0,
        "samples": values,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- Redis --------------------------------------------------------------------


def redis_cpu(r: redis.Redis) -> float:
    """CPU seconds the Redis server has used (user + system, main thread and all)."""
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def used_memory(r: redis.Redis) -> int:
    """Redis ``used_memory``, bytes."""
    return int(r.info("memory")["used_memory"])


def commandstats(r: redis.Redis) -> dict[str, dict[str, float]]:
    """``INFO commandstats``: command -> {calls, usec, usec_per_call}."""
    out: dict[str, dict[str, float]] = {}
    for key, value in r.info("commandstats").items():
        name = key.removeprefix("cmdstat_")
        out[name] = {
            "calls": float(value["calls"]),
            "usec": float(value["usec"]),
            "usec_per_call": float(value["usec_per_call"]),
        }
    return out


def fresh(r: redis.Redis) -> None:
    """Empty the server and zero its statistics (a clean slate for one trial)."""
    r.flushall()
    r.config_resetstat()
    r.slowlog_reset()


class RedisMeter:
    """Server CPU time and command statistics over a measured window."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.cpu0 = 0.0

    def start(self) -> None:
        self.r.config_resetstat()
        self.cpu0 = redis_cpu(self.r)

    def stop(self, jobs: int) -> dict[str, Any]:
        cpu = redis_cpu(self.r) - self.cpu0
        stats = commandstats(self.r)
        scripts = {n: s for n, s in stats.items() if n in ("evalsha", "eval", "evalsha_ro")}
        # Commands run inside scripts are counted in commandstats too, so only
        # the script totals are summed here; INFO cpu is the all-in figure.
        script_usec = sum(s["usec"] for s in scripts.values())
        return {
            "redis_cpu_s": cpu,
            "redis_cpu_us_per_job": cpu / jobs * 1e6 if jobs else None,
            "redis_script_us_per_job": script_usec / jobs if jobs else None,
            "scripts": scripts,
            "commandstats": stats,
        }


# -- machine --------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def versions(packages: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine(r: redis.Redis, server_binary: str) -> dict[str, Any]:
    server = r.info("server")
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "redis_server": server.get("redis_version"),
        "redis_binary": server_binary,
        "redis_malloc": r.info("memory").get("mem_allocator"),
        "git": git_state(),
        "packages": versions(
            [
                "redis-priority-scheduler",
                "redis",
                "hiredis",
                "rq",
                "huey",
                "dramatiq",
                "psutil",
                "py-spy",
            ]
        ),
    }


def git_state() -> dict[str, Any]:
    """The commit measured, and which files of the package differ from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.rstrip()
        except OSError:
            return ""

    snapshot = os.environ.get("BENCH_SNAPSHOT_OF")
    if snapshot:  # bench/run.sh --ref: an exported tree of one commit, nothing else
        return {
            "commit": snapshot,
            "subject": os.environ.get("BENCH_SNAPSHOT_SUBJECT", ""),
            "uncommitted": [],
            "snapshot": True,
        }
    dirty = git("status", "--porcelain", "--", "scheduler", "lua", "pyproject.toml")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "subject": git("log", "-1", "--format=%s").strip(),
        "uncommitted": [line[3:] for line in dirty.splitlines() if len(line) > 3],
    }


def load() -> dict[str, Any]:
    """Load average (1, 5, 15 min) and the ``uptime`` line."""
    one, five, fifteen = os.getloadavg()
    line = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        line = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return {"loadavg": [one, five, fifteen], "uptime": line.strip()}


# -- worker processes -------------------------------------------------------------


class WorkerProcess:
    """A worker subprocess, with its output in a log file, measured with psutil."""

    def __init__(self, cmd: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: TextIO = open(log_path, "a")  # noqa: SIM115 -- closed in stop()
        self._log.write(f"$ {' '.join(cmd)}\n")
        self._log.flush()
        self.spawned = time.time()
        self.proc = subprocess.Popen(
            list(cmd),
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)

    def _tree(self) -> list[psutil.Process]:
        """The process and its live descendants (Dramatiq runs its workers in
        child processes; RQ's forking worker runs a work horse per job)."""
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.Error:
            return [self.ps]

    def rss_mb(self) -> float:
        """Resident memory of the process and its live descendants, MB."""
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return float(total) / 2**20

    def cpu_s(self) -> float:
        """CPU seconds of the process, its reaped children and its live
        descendants."""
        total = 0.0
        for i, proc in enumerate(self._tree()):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
                if i == 0:
                    total += t.children_user + t.children_system
        return total

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (graceful), then SIGKILL of the process group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Leftover children (e.g. an RQ work horse) of the same session.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def wait_until(
    check: Callable[[], bool], timeout: float, interval: float = 0.01, what: str = "condition"
) -> float:
    """Poll ``check`` until true; return the time.time() when it became true.

    Raises:
        TimeoutError: not true within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)


def scheduler_module(name: str) -> Any:
    """Import ``scheduler.backend.<name>``, or ``scheduler.<name>`` from a
    commit before the storage layer existed (``run.sh --ref`` runs today's
    bench against older code)."""
    import importlib

    try:
        return importlib.import_module(f"scheduler.backend.{name}")
    except ModuleNotFoundError:
        return importlib.import_module(f"scheduler.{name}")
