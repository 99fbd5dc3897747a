"""The benchmark report's issue-16 part (bench/issue16.py): targets judged
from a results document, feature costs paired run by run. Pure: no Redis,
no timing (the figures are made up)."""

from __future__ import annotations

from typing import Any

from bench import issue16, report


def _entry(*runs: dict[str, float]) -> dict[str, Any]:
    return {"runs": list(runs), "summary": {}}


def _doc() -> dict[str, Any]:
    return {
        "config": {"runs": 3, "cluster_n": 1000},
        "load_start": {"loadavg": [1.0, 1.0, 1.0]},
        "load_end": {"loadavg": [1.5, 1.2, 1.0]},
        "results": {
            "enqueue_one": {
                "ours": _entry({"jobs_per_s": 17_000}, {"jobs_per_s": 16_500}),
                "huey": _entry({"jobs_per_s": 16_000}, {"jobs_per_s": 16_100}),
            },
            "latency": {
                "ours": _entry({"p50_ms": 0.8, "p99_ms": 1.7}),
                "huey": _entry({"p50_ms": 0.7, "p99_ms": 1.2}),
            },
            "memory": {
                "ours": _entry({"bytes_per_job": 190.0, "bytes_per_job_without_events": 150.0})
            },
            "drain": {
                "ours": _entry({"jobs_per_s": 7_000}),
                "huey": _entry({"jobs_per_s": 2_000}),
                "dramatiq": _entry({"jobs_per_s": 1_500}),
            },
            "middleware_chain": {
                "ours": _entry(
                    {
                        "direct_ns": 90.0,
                        "empty_chain_ns": 330.0,
                        "noop_mw_ns": 1400.0,
                        "timing_mw_ns": 1700.0,
                        "empty_chain_extra_ns": 240.0,
                        "noop_mw_extra_ns": 1310.0,
                        "timing_mw_extra_ns": 1610.0,
                    }
                )
            },
            "drain_features": {
                # Load rises run by run: the pairs see it, the medians would not.
                "ours": _entry({"jobs_per_s": 10_000}, {"jobs_per_s": 5_000}),
                "ours-mwnoop": _entry({"jobs_per_s": 9_900}, {"jobs_per_s": 4_950}),
            },
        },
    }


def test_targets_are_judged_against_the_same_run() -> None:
    rows = {line.split(" | ")[0].lstrip("| "): line for line in issue16.targets(_doc())}
    assert rows["enqueue one at a time ≥ 1.0x Huey"].endswith("| **met** |")
    assert "missed" in rows["latency p50 ≤ Huey's"]
    assert "missed" in rows["latency p99 ≤ 1.5 ms"]
    assert rows["Redis memory per queued no-op job ≤ 200 B, event stream on"].endswith("**met** |")
    assert "huey 2,000" in rows["drain ≥ 3x the best peer"]
    assert "3.5x" in rows["drain ≥ 3x the best peer"]
    assert rows["bulk enqueue ≥ 60,000 jobs/s"].endswith("| not measured |")
    assert rows["cost measured: timeouts (jobs/s on vs off)"].endswith("| not measured |")
    empty = next(v for k, v in rows.items() if k.startswith("empty middleware chain"))
    assert "+240 ns" in empty
    assert "drain -1.0 %" in empty
    assert empty.endswith("| **met** |")


def test_feature_change_pairs_the_runs() -> None:
    doc = _doc()
    entries = doc["results"]["drain_features"]
    assert issue16.paired_ratio(entries["ours"], entries["ours-mwnoop"], "jobs_per_s") == 0.99
    lines = issue16.feature_costs(doc)
    noop = next(line for line in lines if "pass-through" in line)
    assert "-1.0 %" in noop


def test_the_report_renders_without_the_feature_scenarios() -> None:
    text = report.render(_doc())
    assert "## Issue 16: targets" in text
    assert "## Issue 16: feature costs" in text
    assert "Dramatiq" in text
    assert "through the empty chain +240 ns" in text


def test_a_costly_empty_chain_misses_its_target() -> None:
    doc = _doc()
    doc["results"]["middleware_chain"]["ours"]["runs"][0]["empty_chain_extra_ns"] = 5_000.0
    empty = next(line for line in issue16.targets(doc) if "empty middleware chain" in line)
    assert "missed: +5,000 ns" in empty
