"""The benchmark orchestrator: ``python -m bench.main [--quick]`` (via ``bench/run.sh``).

Starts a throwaway ``redis-server`` on a free port without persistence
(:class:`scheduler.devserver.DevServer`), then runs every scenario ``--runs``
times per library, each trial in a fresh Python process on an emptied
server. Runs of different libraries are interleaved (run 1 of every library,
then run 2, ...) so a change of background load hits all of them alike.
Writes ``results.json`` and ``results.md`` into ``bench/results/<timestamp>/``
(and points ``bench/results/latest`` at it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import redis

from bench import report, util

#: Libraries per scenario. Enqueue is client-side only, so RQ appears once;
#: "rq" runs jobs in SimpleWorker, "rq-fork" in RQ's default forking Worker.
LIBS_FOR = {
    "floor": ("ours",),
    "enqueue_one": ("ours", "rq", "huey", "dramatiq"),
    "enqueue_bulk": ("ours", "rq", "huey", "dramatiq"),
    "drain": ("ours", "rq", "rq-fork", "huey", "dramatiq"),
    "latency": ("ours", "rq", "rq-fork", "huey", "dramatiq"),
    # Feature costs (issue 16): ours alternated with its variants that switch
    # one feature on (bench.variants), same trial otherwise.
    # Capacity and limits, not binding (OursChecked), drain.
    "drain_checks": ("ours", "ours-cap", "ours-limq", "ours-limt"),
    # Timeout, learned time, middleware (OursFeature), drain and enqueue one.
    "drain_features": ("ours", "ours-timeout", "ours-auto", "ours-mwnoop", "ours-mwreal"),
    "enqueue_features": ("ours", "ours-timeout", "ours-auto"),
    # The chain's own CPU per task call, in process (bench.chain).
    "middleware_chain": ("ours",),
    # The async producer from one event loop (OursAsync), enqueue one.
    "enqueue_async": ("ours", "ours-async", "ours-gather"),
    # 8 queues on this server vs on a 3-master cluster (bench.cluster.trial).
    "cluster": ("ours", "ours-cluster"),
    "memory": ("ours",),
    "depth_small": ("ours",),
    "depth_large": ("ours",),
    "promote": ("ours",),
    "cron_1": ("ours",),
    "cron_5": ("ours",),
    "expiry": ("ours",),
}
SCENARIOS = tuple(LIBS_FOR)
#: Feature-cost scenarios: ``Config.feature_runs`` runs each, the order of the
#: libraries rotated by one every run (so none always goes first).
FEATURE_SCENARIOS = (
    "drain_checks",
    "drain_features",
    "enqueue_features",
    "middleware_chain",
    "enqueue_async",
)


@attrs.define
class Config:
    """Sizes of one benchmark run (by default those docs/benchmarks.md reports)."""

    runs: int = 3
    #: Runs of each feature-cost scenario (their differences are small).
    feature_runs: int = 5
    floor_n: int = 10_000
    enqueue_n: int = 20_000
    #: Drain size per library: RQ's workers are far slower, so fewer jobs keep
    #: the whole run near 15 minutes; the rate is first-to-last either way.
    drain_n: dict[str, int] = attrs.field(
        factory=lambda: {
            "ours": 20_000,
            "huey": 20_000,
            "dramatiq": 10_000,
            "rq": 5_000,
            "rq-fork": 1_000,
        }
    )
    #: Drain size of each library of drain_checks and drain_features.
    checks_n: int = 20_000
    #: Enqueue size of enqueue_features and enqueue_async.
    features_enqueue_n: int = 20_000
    #: Calls per variant and repeat of the middleware_chain scenario.
    chain_n: int = 200_000
    #: Jobs per queue (8 queues) of the cluster scenario.
    cluster_n: int = 1_000
    latency_n: dict[str, int] = attrs.field(
        factory=lambda: {
            "ours": 1_000,
            "huey": 1_000,
            "dramatiq": 1_000,
            "rq": 1_000,
            "rq-fork": 300,
        }
    )
    latency_rate: float = 200.0
    concurrency: int = 10
    memory_n: int = 100_000
    depth_small: int = 1_000
    depth_large: int = 1_000_000
    depth_jobs: int = 1_000
    promote_n: int = 100_000
    #: Jobs with 100 KB results in the expiry scenario (about 200 MB at peak).
    expiry_n: int = 2_000
    profile_drain_n: int = 20_000
    profile_enqueue_n: int = 20_000
    #: Per-second cron schedules all due in the same second (cron_1, cron_5).
    cron_n: int = 1_000
    cron_seconds: int = 8

    @classmethod
    def quick(cls) -> Config:
        return cls(
            runs=1,
            feature_runs=1,
            floor_n=2_000,
            enqueue_n=2_000,
            drain_n={"ours": 2_000, "huey": 2_000, "dramatiq": 1_000, "rq": 500, "rq-fork": 100},
            checks_n=5_000,
            features_enqueue_n=2_000,
            chain_n=20_000,
            cluster_n=250,
            latency_n={"ours": 200, "huey": 200, "dramatiq": 200, "rq": 200, "rq-fork": 50},
            memory_n=10_000,
            depth_large=50_000,
            depth_jobs=500,
            depth_small=500,
            promote_n=10_000,
            expiry_n=2_000,
            profile_drain_n=5_000,
            profile_enqueue_n=5_000,
        )


def feature_trial_args(scenario: str, lib: str, cfg: Config) -> list[str] | None:
    """Arguments of a trial of the issue-16 feature-cost scenarios, or None."""
    if scenario in ("enqueue_features", "enqueue_async"):
        return [lib, "enqueue_one", "--n", str(cfg.features_enqueue_n)]
    if scenario == "middleware_chain":
        return [lib, scenario, "--n", str(cfg.chain_n)]
    if scenario == "cluster":
        return [lib, scenario, "--n", str(cfg.cluster_n), "--concurrency", str(cfg.concurrency)]
    return None


def trial_args(scenario: str, lib: str, cfg: Config) -> list[str]:
    """Command-line arguments of :mod:`bench.trial` for one trial."""
    feature = feature_trial_args(scenario, lib, cfg)
    if feature is not None:
        return feature
    if scenario in ("enqueue_one", "enqueue_bulk"):
        return [lib, scenario, "--n", str(cfg.enqueue_n)]
    if scenario == "floor":
        return [lib, scenario, "--n", str(cfg.floor_n)]
    if scenario == "drain":
        return [lib, scenario, "--n", str(cfg.drain_n[lib]), "--concurrency", str(cfg.concurrency)]
    if scenario in ("drain_checks", "drain_features"):
        return [lib, "drain", "--n", str(cfg.checks_n), "--concurrency", str(cfg.concurrency)]
    if scenario == "latency":
        return [
            lib,
            scenario,
            "--n",
            str(cfg.latency_n[lib]),
            "--rate",
            str(cfg.latency_rate),
            "--concurrency",
            str(cfg.concurrency),
        ]
    if scenario == "memory":
        return [lib, scenario, "--n", str(cfg.memory_n)]
    if scenario in ("depth_small", "depth_large"):
        n = cfg.depth_small if scenario == "depth_small" else cfg.depth_large
        return [
            lib,
            "depth",
            "--n",
            str(n),
            "--jobs",
            str(cfg.depth_jobs),
            "--samples",
            str(cfg.runs),
        ]
    if scenario == "promote":
        return [lib, scenario, "--n", str(cfg.promote_n), "--concurrency", str(cfg.concurrency)]
    if scenario.startswith("cron_"):
        procs = scenario.split("_")[1]
        seconds = str(cfg.cron_seconds)
        return [lib, "cron", "--n", str(cfg.cron_n), "--procs", procs, "--seconds", seconds]
    if scenario == "expiry":
        return [lib, scenario, "--n", str(cfg.expiry_n), "--concurrency", str(cfg.concurrency)]
    raise ValueError(scenario)


def run_trial(url: str, args: list[str], log_dir: Path, label: str) -> dict[str, Any]:
    """Run one trial process; its samples, or an error."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(util.ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "bench.trial", *args, "--url", url, "--log-dir", str(log_dir)]
    started = time.time()
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, cwd=util.ROOT, env=env, capture_output=True, text=True, check=False)
    took = time.time() - started
    if proc.stderr.strip():
        (log_dir / f"{label}.stderr.log").write_text(proc.stderr)
    lines = [x for x in proc.stdout.splitlines() if x.startswith('{"samples"')]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-1500:]
        return {"error": f"exit {proc.returncode}: {tail}", "took_s": took, "load1": load}
    samples: list[dict[str, Any]] = json.loads(lines[-1])["samples"]
    return {"samples": samples, "took_s": took, "load1": load}


def numeric_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median/spread of every top-level numeric metric over the runs."""
    keys: list[str] = []
    for sample in runs:
        keys += [k for k, v in sample.items() if isinstance(v, int | float) and k not in keys]
    return {
        k: util.summarize([s[k] for s in runs if isinstance(s.get(k), int | float)]) for k in keys
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Benchmark the scheduler against RQ, Huey and Dramatiq."
    )
    p.add_argument("--quick", action="store_true", help="small N, 1 run: a smoke test")
    p.add_argument("--runs", type=int, help="runs per scenario [3, feature costs 5; quick: 1]")
    p.add_argument(
        "--libs",
        help=f"comma-separated subset of {','.join(sorted(set(sum(LIBS_FOR.values(), ()))))}",
    )
    p.add_argument("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument(
        "--profile", action="store_true", help="also profile (py-spy) after the scenarios"
    )
    p.add_argument("--profile-only", action="store_true", help="only the profiles")
    p.add_argument("--out", type=Path, help="results directory [bench/results/<timestamp>]")
    a = p.parse_args(argv)

    cfg = Config.quick() if a.quick else Config()
    if a.runs:
        cfg.runs = cfg.feature_runs = a.runs
    libs = set(a.libs.split(",")) if a.libs else None
    scenarios = [s for s in SCENARIOS if not a.scenarios or s in a.scenarios.split(",")]
    if a.profile_only:
        scenarios = []
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = a.out or util.ROOT / "bench" / "results" / stamp
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    from scheduler.devserver import DevServer

    t_start = time.time()
    with DevServer() as server:
        r = redis.Redis.from_url(server.url)
        doc: dict[str, Any] = {
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if a.quick else "full",
            "config": attrs.asdict(cfg),
            "machine": util.machine(r, server.binary),
            "load_start": util.load(),
            "results": {},
        }
        print(
            f"redis {doc['machine']['redis_server']} at {server.url}; results in {out}", flush=True
        )
        print(f"load: {doc['load_start']['uptime']}", flush=True)
        for scenario in scenarios:
            chosen = [lib for lib in LIBS_FOR[scenario] if libs is None or lib in libs]
            entries: dict[str, dict[str, Any]] = {
                lib: {
                    "args": trial_args(scenario, lib, cfg),
                    "runs": [],
                    "errors": [],
                    "trials": [],
                }
                for lib in chosen
            }
            one_trial = scenario.startswith("depth")  # a depth trial yields all its samples
            features = scenario in FEATURE_SCENARIOS
            runs = 1 if one_trial else cfg.feature_runs if features else cfg.runs
            for i in range(runs):
                turn = i % len(chosen) if features and chosen else 0
                for lib in chosen[turn:] + chosen[:turn]:
                    e = entries[lib]
                    label = f"{scenario}-{lib}-{i + 1}"
                    res = run_trial(server.url, e["args"], log_dir, label)
                    e["trials"].append({k: v for k, v in res.items() if k != "samples"})
                    if "error" in res:
                        e["errors"].append(res["error"])
                        print(f"  {label}: ERROR {res['error'][-300:]}", flush=True)
                        continue
                    e["runs"].extend(res["samples"])
                    print(
                        f"  {label}: {report.brief(scenario, res['samples'])} "
                        f"({res['took_s']:.0f} s, load {res['load1']:.2f})",
                        flush=True,
                    )
            for e in entries.values():
                e["summary"] = numeric_summary(e["runs"])
            doc["results"][scenario] = entries
            (out / "results.json").write_text(json.dumps(doc, indent=1))
        if a.profile or a.profile_only:
            from bench import profile

            doc["profile"] = profile.run(
                server.url, out, drain_n=cfg.profile_drain_n, enqueue_n=cfg.profile_enqueue_n
            )
    doc["load_end"] = util.load()
    doc["duration_s"] = time.time() - t_start
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    md = report.render(doc)
    (out / "results.md").write_text(md)
    latest = out.parent / "latest"
    if out.parent.name == "results":
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out.name)
    print()
    print(md)
    print(f"results: {out / 'results.json'}, {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
