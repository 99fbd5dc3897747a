"""The analysis and report of :mod:`bench.tails` (the latency tail, issue 16):
per-sample components and flags, attribution of the slowest samples, and the
printed report."""

from __future__ import annotations

from typing import Any

from bench import util

Interval = tuple[float, float]


def overlaps(intervals: list[Interval], a: float, b: float) -> float:
    """Total time (s) the intervals overlap [a, b]."""
    return sum(max(0.0, min(e, b) - max(s, a)) for s, e in intervals)


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


def print_report(res: dict[str, Any]) -> None:
    """Print :func:`analyse`'s result."""
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
