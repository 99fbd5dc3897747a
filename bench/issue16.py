"""Issue 16's report: every target with the measured value and met/missed,
and the cost of each feature (off vs on, alternated in the same run).

:func:`render` returns paste-ready markdown lines; :mod:`bench.report`
puts them at the top of ``results.md``. Re-render a run with
``python -m bench.report bench/results/latest/results.json``.
"""

from __future__ import annotations

import statistics
from typing import Any

#: Drain of one worker process before the other issues, jobs/s: issue 16's
#: table (a full run of the suite on this machine, medians of 3). A figure of
#: another run: compare it with care, or measure the old commit with
#: ``bash bench/run.sh --ref COMMIT --scenarios drain``.
DRAIN_BEFORE = 5_900
#: Most CPU the empty middleware chain may add to one task call and still
#: "cost about nothing", ns: under 1 % of the worker's ~60-90 µs per job.
CHAIN_NS = 500

#: (scenario, variant, what it switches on); "off" is plain ``ours`` of the
#: same scenario, alternated with it run by run.
FEATURES = [
    ("drain_features", "ours-timeout", "per-job execution timeout (60 s, never reached)"),
    ("enqueue_features", "ours-timeout", "per-job execution timeout (60 s)"),
    ("drain_checks", "ours-cap", "worker capacity (1000 units; not binding)"),
    ("drain_checks", "ours-limq", "queue concurrency + rate limit (not binding)"),
    ("drain_checks", "ours-limt", "queue + task concurrency + rate limits (not binding)"),
    ("drain_features", "ours-auto", 'learned estimate, `time="auto"`'),
    ("enqueue_features", "ours-auto", 'learned estimate, `time="auto"` (statistics present)'),
    ("drain_features", "ours-mwnoop", "middleware: one pass-through (`return call_next()`)"),
    ("drain_features", "ours-mwreal", "middleware: one real one (timing + log call)"),
    ("enqueue_async", "ours-async", "async producer: `await app.aenqueue()` one at a time"),
    ("enqueue_async", "ours-gather", "async producer: 100 `aenqueue()` at once (`gather`)"),
]


def _entry(doc: dict[str, Any], scenario: str, lib: str) -> dict[str, Any] | None:
    entry: dict[str, Any] | None = doc.get("results", {}).get(scenario, {}).get(lib)
    return entry if entry and entry.get("runs") else None


def _median(entry: dict[str, Any] | None, metric: str) -> float | None:
    if entry is None:
        return None
    values = [r[metric] for r in entry["runs"] if isinstance(r.get(metric), int | float)]
    return statistics.median(values) if values else None


def paired_ratio(off: dict[str, Any], on: dict[str, Any], metric: str) -> float | None:
    """Median over the runs of on/off, run i against run i (they ran back to
    back, so a change of load hits both); the ratio of the medians if the
    run counts differ."""
    a = [r.get(metric) for r in off["runs"]]
    b = [r.get(metric) for r in on["runs"]]
    if len(a) == len(b) and all(isinstance(x, int | float) and x for x in a):
        pairs = [y / x for x, y in zip(a, b, strict=True) if isinstance(y, int | float)]
        return statistics.median(pairs) if pairs else None
    ma, mb = _median(off, metric), _median(on, metric)
    return mb / ma if ma and mb is not None else None


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if v is None else fmt.format(v)


def feature_costs(doc: dict[str, Any]) -> list[str]:
    """The feature-cost table: jobs/s off and on, the paired change, and the
    Redis / client-or-worker CPU per job off and on."""
    lines = [
        "| feature | scenario | off jobs/s | on jobs/s | change (paired) "
        "| Redis CPU µs/job off → on | client/worker CPU µs/job off → on |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for scenario, lib, label in FEATURES:
        off, on = _entry(doc, scenario, "ours"), _entry(doc, scenario, lib)
        if off is None or on is None:
            continue
        ratio = paired_ratio(off, on, "jobs_per_s")
        cpu = "worker_cpu_us_per_job" if "drain" in scenario else "client_cpu_us_per_job"
        lines.append(
            f"| {label} | {scenario} | {_num(_median(off, 'jobs_per_s'))} "
            f"| {_num(_median(on, 'jobs_per_s'))} "
            f"| {_num(None if ratio is None else (ratio - 1) * 100, '{:+.1f} %')} "
            f"| {_num(_median(off, 'redis_cpu_us_per_job'), '{:.1f}')} → "
            f"{_num(_median(on, 'redis_cpu_us_per_job'), '{:.1f}')} "
            f"| {_num(_median(off, cpu), '{:.0f}')} → {_num(_median(on, cpu), '{:.0f}')} |"
        )
    single, cluster = _entry(doc, "cluster", "ours"), _entry(doc, "cluster", "ours-cluster")
    if single and cluster:
        n = doc.get("config", {}).get("cluster_n", 0)
        for metric, what in (
            ("drain_jobs_per_s", "drain, one in-process worker"),
            ("enqueue_jobs_per_s", "bulk enqueue"),
            ("enqueue_one_jobs_per_s", "enqueue one at a time"),
        ):
            ratio = paired_ratio(single, cluster, metric)
            lines.append(
                f"| cluster route: 3-master Redis Cluster vs one server, 8 queues x "
                f"{n:,} jobs: {what} | cluster "
                f"| {_num(_median(single, metric))} | {_num(_median(cluster, metric))} "
                f"| {_num(None if ratio is None else (ratio - 1) * 100, '{:+.1f} %')} | — | — |"
            )
    return lines


def _status(ok: bool | None, miss: str = "") -> str:
    if ok is None:
        return "not measured"
    return "**met**" if ok else f"missed{': ' + miss if miss else ''}"


def _peer_best(doc: dict[str, Any], scenario: str, metric: str, higher: bool) -> tuple[str, float]:
    from bench.report import PEERS

    found = {p: m for p in PEERS if (m := _median(_entry(doc, scenario, p), metric)) is not None}
    if not found:
        return "", 0.0
    best = (max if higher else min)(found, key=lambda k: found[k])
    return best, found[best]


def targets(doc: dict[str, Any]) -> list[str]:
    """The targets table: target, measured (same run), met/missed."""
    rows: list[tuple[str, str, str]] = []
    med = _median

    one, huey_one = (
        med(_entry(doc, "enqueue_one", "ours"), "jobs_per_s"),
        med(_entry(doc, "enqueue_one", "huey"), "jobs_per_s"),
    )
    ok = None if one is None or huey_one is None else one >= huey_one
    rows.append(
        (
            "enqueue one at a time ≥ 1.0x Huey",
            f"{_num(one)} vs Huey {_num(huey_one)} jobs/s"
            + (f" ({one / huey_one:.2f}x)" if one and huey_one else ""),
            _status(ok, f"{(1 - one / huey_one) * 100:.0f} % short" if one and huey_one else ""),
        )
    )
    p50 = med(_entry(doc, "latency", "ours"), "p50_ms")
    huey_p50 = med(_entry(doc, "latency", "huey"), "p50_ms")
    ok = None if p50 is None or huey_p50 is None else p50 <= huey_p50
    rows.append(
        (
            "latency p50 ≤ Huey's",
            f"{_num(p50, '{:.2f}')} vs Huey {_num(huey_p50, '{:.2f}')} ms",
            _status(ok, f"{p50 / huey_p50:.2f}x Huey's" if p50 and huey_p50 else ""),
        )
    )
    p99 = med(_entry(doc, "latency", "ours"), "p99_ms")
    rows.append(
        (
            "latency p99 ≤ 1.5 ms",
            f"{_num(p99, '{:.2f}')} ms",
            _status(None if p99 is None else p99 <= 1.5, f"{_num(p99, '{:.2f}')} ms"),
        )
    )
    mem_entry = _entry(doc, "memory", "ours")
    mem, mem_off = med(mem_entry, "bytes_per_job"), med(mem_entry, "bytes_per_job_without_events")
    rows.append(
        (
            "Redis memory per queued no-op job ≤ 200 B, event stream on",
            f"{_num(mem)} B ({_num(mem_off)} B without the stream's share)",
            _status(None if mem is None else mem <= 200, f"{mem / 200:.2f}x" if mem else ""),
        )
    )
    drain = med(_entry(doc, "drain", "ours"), "jobs_per_s")
    peer, best = _peer_best(doc, "drain", "jobs_per_s", True)
    ok = None if drain is None or not best else drain >= 3 * best
    rows.append(
        (
            "drain ≥ 3x the best peer",
            f"{_num(drain)} vs {peer or '?'} {_num(best or None)} jobs/s"
            + (f" ({drain / best:.1f}x)" if drain and best else ""),
            _status(ok, f"{drain / best:.1f}x" if drain and best else ""),
        )
    )
    rows.append(
        (
            "drain not below before the other issues",
            f"{_num(drain)} now vs {DRAIN_BEFORE:,} before (issue 16's run; another run)",
            _status(
                None if drain is None else drain >= DRAIN_BEFORE,
                f"{(1 - drain / DRAIN_BEFORE) * 100:.0f} % below" if drain else "",
            ),
        )
    )
    bulk = med(_entry(doc, "enqueue_bulk", "ours"), "jobs_per_s")
    rows.append(
        (
            "bulk enqueue ≥ 60,000 jobs/s",
            f"{_num(bulk)} jobs/s",
            _status(
                None if bulk is None else bulk >= 60_000,
                f"{(1 - bulk / 60_000) * 100:.0f} % short" if bulk else "",
            ),
        )
    )
    rows += _feature_targets(doc)
    lines = ["| target | measured (this run, medians) | status |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {s} |" for t, m, s in rows]
    return lines


def _feature_targets(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    """'Every new feature's cost measured': one row per feature (the drain's
    change where there is one); the empty middleware chain must cost about
    nothing (the in-process chain adds at most :data:`CHAIN_NS` per call)."""

    def change(scenario: str, lib: str, metric: str = "jobs_per_s") -> float | None:
        off, on = _entry(doc, scenario, "ours"), _entry(doc, scenario, lib)
        if off is None or on is None:
            return None
        r = paired_ratio(off, on, metric)
        return None if r is None else (r - 1) * 100

    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:+.1f} %"

    out = []
    for what, parts in (
        ("timeouts", [("drain", "drain_features", "ours-timeout"),
                      ("enqueue", "enqueue_features", "ours-timeout")]),
        ("capacity and limits", [("capacity", "drain_checks", "ours-cap"),
                                 ("queue limits", "drain_checks", "ours-limq"),
                                 ("queue + task limits", "drain_checks", "ours-limt")]),
        ("learned estimates", [("drain", "drain_features", "ours-auto"),
                               ("enqueue", "enqueue_features", "ours-auto")]),
        ("middleware", [("pass-through", "drain_features", "ours-mwnoop"),
                        ("real", "drain_features", "ours-mwreal")]),
        ("async producer", [("one at a time", "enqueue_async", "ours-async"),
                            ("gather of 100", "enqueue_async", "ours-gather")]),
    ):  # fmt: skip
        values = [(label, change(s, lib)) for label, s, lib in parts]
        measured = any(v is not None for _, v in values)
        text = ", ".join(f"{label} {pct(v)}" for label, v in values)
        out.append(
            (
                f"cost measured: {what} (jobs/s on vs off)",
                text,
                "**met** (measured)" if measured else "not measured",
            )
        )
    chain = _entry(doc, "middleware_chain", "ours")
    empty = _median(chain, "empty_chain_extra_ns")
    noop = change("drain_features", "ours-mwnoop")
    out.append(
        (
            f"empty middleware chain ≈ nothing (≤ {CHAIN_NS:,} ns of CPU per task call)",
            f"empty chain +{_num(empty)} ns, one pass-through "
            f"+{_num(_median(chain, 'noop_mw_extra_ns'))} ns per call (in process); "
            f"drain {pct(noop)} with one pass-through",
            _status(None if empty is None else empty <= CHAIN_NS, f"+{_num(empty)} ns"),
        )
    )
    parts = [
        f"{label} {pct(change('cluster', 'ours-cluster', metric))}"
        for label, metric in (
            ("drain", "drain_jobs_per_s"),
            ("bulk", "enqueue_jobs_per_s"),
            ("one at a time", "enqueue_one_jobs_per_s"),
        )
    ]
    measured = _entry(doc, "cluster", "ours-cluster") is not None
    out.append(
        (
            "cost measured: a cluster route (3 masters vs one server)",
            ", ".join(parts),
            "**met** (measured)" if measured else "not measured",
        )
    )
    return out


def render(doc: dict[str, Any]) -> list[str]:
    """Markdown lines: the targets, then the feature costs."""
    load = [round(x, 2) for x in doc.get("load_start", {}).get("loadavg", [])]
    load_end = [round(x, 2) for x in doc.get("load_end", {}).get("loadavg", [])]
    return [
        "## Issue 16: targets",
        "",
        f"Same run, all features at their defaults; load average (1/5/15 min) {load} at "
        f"the start, {load_end} at the end. Peers: RQ, Huey, Dramatiq.",
        "",
        *targets(doc),
        "",
        "## Issue 16: feature costs",
        "",
        "Each variant alternated with plain `ours` in the same run (off, on, off, on, ...); "
        "medians; change = median over the runs of on/off, run against run. A drain "
        "change inside ±5-10 % is within this machine's run-to-run noise; the CPU per "
        "job moves less.",
        "",
        *feature_costs(doc),
        *chain_line(doc),
    ]


def chain_line(doc: dict[str, Any]) -> list[str]:
    """The in-process middleware chain figures (scenario ``middleware_chain``)."""
    chain = _entry(doc, "middleware_chain", "ours")
    if chain is None:
        return []
    ns = {k: _num(_median(chain, k)) for k in chain["runs"][0]}
    return [
        "",
        "Middleware chain in process (`bench/chain.py`, CPU per task call, median of "
        f"{len(chain['runs'])} runs): the task called directly {ns['direct_ns']} ns; through "
        f"the empty chain +{ns['empty_chain_extra_ns']} ns; one pass-through middleware "
        f"+{ns['noop_mw_extra_ns']} ns; the timing middleware +{ns['timing_mw_extra_ns']} ns.",
    ]
