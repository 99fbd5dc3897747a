"""Markdown from a results document (``results.json``).

``python -m bench.report bench/results/latest/results.json`` re-renders one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

LIB_TITLES = {
    "ours": "ours",
    "rq": "RQ (SimpleWorker)",
    "rq-fork": "RQ (default Worker, fork per job)",
    "huey": "Huey (10 threads)",
    "dramatiq": "Dramatiq (1 process, 10 threads)",
}
PEERS = ("rq", "rq-fork", "huey", "dramatiq")


@attrs.frozen
class Row:
    """One line of the headline table."""

    label: str
    scenario: str
    metric: str
    higher_is_better: bool
    target: float | None
    fmt: str = "{:,.0f}"
    #: For the enqueue rows RQ's figure is the client's, whatever its worker.
    peers: tuple[str, ...] = PEERS


ROWS = [
    Row(
        "enqueue, one at a time (jobs/s)",
        "enqueue_one",
        "jobs_per_s",
        True,
        14_000,
        peers=("rq", "huey", "dramatiq"),
    ),
    Row(
        "enqueue, bulk (jobs/s)",
        "enqueue_bulk",
        "jobs_per_s",
        True,
        60_000,
        peers=("rq", "huey", "dramatiq"),
    ),
    Row("drain, one worker process (jobs/s)", "drain", "jobs_per_s", True, 10_000),
    Row("worker start-up to first job done (s)", "drain", "startup_s", False, None, "{:.2f}"),
    Row("latency p50 (ms)", "latency", "p50_ms", False, 0.5, "{:.2f}"),
    Row("latency p99 (ms)", "latency", "p99_ms", False, 1.5, "{:.2f}"),
    Row("worker RSS after the drain (MB)", "drain", "worker_rss_mb", False, None, "{:.1f}"),
]


def _get(doc: dict[str, Any], scenario: str, lib: str, metric: str) -> dict[str, Any] | None:
    entry = doc.get("results", {}).get(scenario, {}).get(lib)
    if not entry:
        return None
    s = entry.get("summary", {}).get(metric)
    return s if s and s.get("n") else None


def cell(s: dict[str, Any] | None, fmt: str) -> str:
    if s is None:
        return "—"
    text = fmt.format(s["median"])
    if s["n"] > 1:
        text += f" ({s['spread_pct']:.0f}%)"
    return text


def _vs_best(ours: float | None, peers: dict[str, float], higher: bool) -> str:
    if ours is None or not peers:
        return "—"
    pick: Callable[..., str] = max if higher else min
    best = pick(peers, key=lambda k: peers[k])
    return f"{ours / peers[best]:.2f}x {best}"


def _target(ours: float | None, target: float | None, higher: bool) -> str:
    if ours is None or target is None:
        return "—"
    if (ours >= target) if higher else (ours <= target):
        return "met"
    if higher:
        return f"missed: {(target - ours) / target * 100:.0f}% short"
    return f"missed: {ours / target:.1f}x the target"


def headline(doc: dict[str, Any]) -> list[str]:
    runs = doc.get("config", {}).get("runs", "?")
    lines = [
        f"Median of {runs} runs; (n%) = spread of the runs, (max - min) / median. "
        '"vs best peer" = ours ÷ the best peer\'s median (above 1 is better for '
        "throughput, below 1 is better for times and sizes).",
        "",
        "| scenario | target | "
        + " | ".join(LIB_TITLES[k] for k in ("ours", *PEERS))
        + " | vs best peer | target |",
        "|---|---:|" + "---:|" * (1 + len(PEERS)) + "---|---|",
    ]
    for row in ROWS:
        o = _get(doc, row.scenario, "ours", row.metric)
        cells = [cell(o, row.fmt)]
        peer_medians: dict[str, float] = {}
        for lib in PEERS:
            if lib not in row.peers:
                cells.append("(same client)" if lib == "rq-fork" else "—")
                continue
            s = _get(doc, row.scenario, lib, row.metric)
            cells.append(cell(s, row.fmt))
            if s is not None:
                peer_medians[lib] = s["median"]
        ours = o["median"] if o else None
        target = (
            "—"
            if row.target is None
            else (("≥ " if row.higher_is_better else "≤ ") + row.fmt.format(row.target))
        )
        lines.append(
            f"| {row.label} | {target} | "
            + " | ".join(cells)
            + f" | {_vs_best(ours, peer_medians, row.higher_is_better)}"
            + f" | {_target(ours, row.target, row.higher_is_better)} |"
        )
    # Memory: ours from the 100k memory scenario; peers from their bulk enqueue runs.
    mem = _get(doc, "memory", "ours", "bytes_per_job")
    mem_peers = ("rq", "huey", "dramatiq")
    peer_mem = {lib: _get(doc, "enqueue_bulk", lib, "bytes_per_job") for lib in mem_peers}
    pm = {k: v["median"] for k, v in peer_mem.items() if v}
    lines.append(
        "| Redis memory per queued job (bytes) | ≤ 200 | "
        + cell(mem, "{:,.0f}")
        + f" | {cell(peer_mem['rq'], '{:,.0f}')} | (same client)"
        + f" | {cell(peer_mem['huey'], '{:,.0f}')}"
        + f" | {cell(peer_mem['dramatiq'], '{:,.0f}')}"
        + f" | {_vs_best(mem['median'] if mem else None, pm, False)}"
        + f" | {_target(mem['median'] if mem else None, 200, False)} |"
    )
    small = _get(doc, "depth_small", "ours", "jobs_per_s")
    large = _get(doc, "depth_large", "ours", "jobs_per_s")
    if small and large:
        ratio = large["median"] / small["median"]
        cfg = doc.get("config", {})
        lines.append(
            f"| depth {cfg.get('depth_large', 0):,} vs {cfg.get('depth_small', 0):,} ready "
            f"(lease+complete ratio) | ≥ 0.80 | {ratio:.2f} ({large['median']:,.0f} vs "
            f"{small['median']:,.0f} jobs/s) | — | — | — | — | — | {_target(ratio, 0.8, True)} |"
        )
    promo = _get(doc, "promote", "ours", "max_script_us")
    if promo:
        n = doc.get("config", {}).get("promote_n", 0)
        lines.append(
            f"| longest script call while promoting {n:,} due jobs (µs) | ≤ 10,000 | "
            f"{cell(promo, '{:,.0f}')} | — | — | — | — | — "
            f"| {_target(promo['median'], 10_000, False)} |"
        )
    for procs in ("1", "5"):
        lag = _get(doc, f"cron_{procs}", "ours", "lag_p99_ms")
        if lag:
            n = doc.get("config", {}).get("cron_n", 0)
            lines.append(
                f"| cron lag p99, {n:,} schedules due in the same second, {procs} "
                f"process(es) (ms) | ≤ 100 | {cell(lag, '{:,.0f}')} | — | — | — | — | — "
                f"| {_target(lag['median'], 100, False)} |"
            )
    return lines


def detail_tables(doc: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for scenario, entries in doc.get("results", {}).items():
        metrics: list[str] = []
        for e in entries.values():
            metrics += [m for m in e.get("summary", {}) if m not in metrics]
        if not metrics:
            continue
        libs = list(entries)
        lines += [f"### {scenario}", ""]
        for lib, e in entries.items():
            args = " ".join(e.get("args", []))
            lines.append(f"- {LIB_TITLES.get(lib, lib)}: `python -m bench.trial {args}`")
            for err in e.get("errors", []):
                lines.append(f"  - ERROR: `{err.strip().splitlines()[-1][:200]}`")
        lines += ["", "| metric | " + " | ".join(LIB_TITLES.get(x, x) for x in libs) + " |"]
        lines.append("|---|" + "---:|" * len(libs))
        for m in metrics:
            row = []
            for lib in libs:
                s = entries[lib].get("summary", {}).get(m)
                if not s or not s.get("n"):
                    row.append("—")
                    continue
                v = s["median"]
                fmt = "{:,.0f}" if abs(v) >= 100 else "{:.3g}"
                row.append(cell(s, fmt))
            lines.append(f"| {m} | " + " | ".join(row) + " |")
        lines.append("")
    return lines


def machine_lines(doc: dict[str, Any]) -> list[str]:
    m = doc.get("machine", {})
    pk = m.get("packages", {})
    pkgs = ", ".join(f"{k} {v}" for k, v in pk.items() if v) or "?"
    missing = ", ".join(k for k, v in pk.items() if not v)
    g = m.get("git", {})
    return [
        f"- Machine: {m.get('cores')} cores, {m.get('cpu_model')}, {m.get('memory_gb')} GB RAM, "
        f"Linux {m.get('kernel')}",
        f"- Python {m.get('python')} ({m.get('python_impl')}); Redis server "
        f"{m.get('redis_server')} ({m.get('redis_binary')}, {m.get('redis_malloc')}), "
        "no persistence, same machine as producer and worker",
        f"- Packages: {pkgs}" + (f" (not installed: {missing})" if missing else ""),
        f"- Code measured: commit {g.get('commit', '?')} ({g.get('subject', '')})"
        + (" -- a clean export of that commit (run.sh --ref)" if g.get("snapshot") else "")
        + (
            f"; uncommitted changes in {len(g['uncommitted'])} files of scheduler/, lua/"
            if g.get("uncommitted")
            else ""
        ),
        f"- Load at start: `{doc.get('load_start', {}).get('uptime', '?')}`",
        f"- Load at end: `{doc.get('load_end', {}).get('uptime', '?')}`",
        f"- Mode: {doc.get('mode')}, started {doc.get('started')}, took "
        f"{doc.get('duration_s', 0) / 60:.1f} min",
    ]


def brief(scenario: str, samples: list[dict[str, Any]]) -> str:
    """One line for the progress output."""
    s = samples[0]
    if scenario == "latency":
        return f"p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms"
    if scenario == "floor":
        return ", ".join(f"{k} {v:.1f}" for k, v in s.items())
    if scenario == "memory":
        return f"{s['bytes_per_job']:.0f} bytes/job"
    if scenario == "promote":
        inv = s.get("order_inversions")
        order = "" if inv is None else f", {inv} order inversions"
        return f"longest script {s['max_script_us']} us{order}"
    if scenario.startswith("cron"):
        return (
            f"{s['schedules']} schedules, {s['processes']} process(es): lag p50 "
            f"{s['lag_p50_ms']:.0f} ms, p99 {s['lag_p99_ms']:.0f} ms, "
            f"{s['firings_missing']} firings missing"
        )
    if scenario == "expiry":
        return (
            f"peak {s['peak_mb']:.0f} MB, all gone {s['gone_after_ttl_s']:.2f} s after the last TTL"
        )
    if scenario == "middleware_chain":
        return (
            f"direct {s['direct_ns']:.0f} ns, empty chain +{s['empty_chain_extra_ns']:.0f}, "
            f"pass-through +{s['noop_mw_extra_ns']:.0f}, timing +{s['timing_mw_extra_ns']:.0f}"
        )
    if scenario == "cluster":
        return (
            f"drain {s['drain_jobs_per_s']:,.0f} jobs/s, bulk enqueue "
            f"{s['enqueue_jobs_per_s']:,.0f}, one at a time {s['enqueue_one_jobs_per_s']:,.0f}"
        )
    if scenario.startswith("depth"):
        return ", ".join(f"{x['jobs_per_s']:,.0f}" for x in samples) + " jobs/s"
    extra = f", start-up {s['startup_s']:.2f} s" if "startup_s" in s else ""
    return f"{s['jobs_per_s']:,.0f} jobs/s{extra}"


def render(doc: dict[str, Any]) -> str:
    from bench import issue16

    lines = ["# Benchmark results", "", *machine_lines(doc), ""]
    lines += issue16.render(doc)
    lines += ["", "## Headline", ""]
    lines += headline(doc)
    fl = doc.get("results", {}).get("floor", {}).get("ours", {}).get("summary", {})
    if fl:
        lines += [
            "",
            "Round-trip floors on this machine, measured at the start of this run: the "
            "cheapest one-call-per-job costs (µs per call). They move with the machine's "
            "load; see docs/benchmarks.md.",
            "",
            "| call | µs | max calls/s |",
            "|---|---:|---:|",
        ]
        for key, label in (
            ("raw_socket_ping_us", "raw socket PING, no client library"),
            ("redis_py_ping_us", "redis-py PING"),
            ("redis_py_lpush_us", "redis-py LPUSH of 120 bytes (Huey's enqueue)"),
            ("redis_py_evalsha_trivial_us", "redis-py EVALSHA `return 1`, 10 KEYS, 11 ARGV"),
        ):
            if fl.get(key, {}).get("n"):
                v = fl[key]["median"]
                lines.append(f"| {label} | {cell(fl[key], '{:.1f}')} | {1e6 / v:,.0f} |")
    lines += ["", "## All metrics", ""]
    lines += detail_tables(doc)
    if doc.get("profile"):
        from bench import profile

        lines += ["", profile.render(doc["profile"])]
    return "\n".join(lines) + "\n"


def main() -> int:
    doc = json.loads(Path(sys.argv[1]).read_text())
    sys.stdout.write(render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
