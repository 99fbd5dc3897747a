"""The dashboard's pure parts: page cursors, rate history, charts."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="the dashboard needs the web extra")

from scheduler.admin import QueueStatus
from scheduler.errors import ValidationError
from scheduler.web.charts import rate_chart, sparkline
from scheduler.web.history import RateHistory, RatePoint, throughput_bins
from scheduler.web.listing import decode_cursor, encode_cursor


def test_cursor_round_trip_and_errors() -> None:
    for score, member in [(-1.5, "00000000A:job~1"), (float("inf"), "x"), (1e300, "a:b")]:
        assert decode_cursor(encode_cursor(score, member)) == (score, member)
    assert decode_cursor("") is None and decode_cursor(None) is None
    for bad in ("nope", "1.0", "~x", "nan~x", "1.0~"):
        with pytest.raises(ValidationError):
            decode_cursor(bad)


def test_throughput_bins_from_per_second_buckets() -> None:
    now_ms = 1_000_500
    stats = {"r:999": "10", "r:985": "5", "r:1000": "7", "r:bad": "x", "enqueued": "3"}
    bins = throughput_bins(stats, now_ms, span_s=20, bin_s=10)
    # Bins 980-989 and 990-999; the current second (1000) is incomplete and left out.
    assert bins == [0.5, 1.0]


def _status(queue: str, succeeded: int, failed: int) -> QueueStatus:
    totals = dict.fromkeys(("enqueued", "retried", "dead", "cancelled", "expired"), 0)
    totals.update(succeeded=succeeded, failed=failed)
    return QueueStatus(queue, 0, 0, 0, 0, 0, False, 0.0, None, True, 0.0, 0, totals)


def test_rate_history_rates_and_failure_rate() -> None:
    history = RateHistory(min_interval_s=1.0, window_s=60.0)
    history.record([_status("a", 0, 0), _status("b", 0, 0)], 0)
    history.record([_status("a", 5, 5)], 500)  # too soon: dropped
    history.record([_status("a", 8, 2), _status("b", 10, 0)], 2000)
    points = history.points("a")
    assert points == [RatePoint(2000, 5.0, 0.2)]
    assert history.failure_rate("a") == pytest.approx(0.2)
    assert history.failure_rate() == pytest.approx(2 / 20)
    history.record([_status("a", 8, 2)], 100_000)  # the old samples leave the window
    assert history.points("a") == []


def test_charts_hold_only_numbers_and_escaped_labels() -> None:
    spark = str(sparkline([0, 1, 2], title="<q>"))
    assert "<svg" in spark and "<q>" not in spark and "&lt;q&gt;" in spark
    assert str(sparkline([])) == ""
    assert "Collecting" in str(rate_chart([]))
    chart = str(rate_chart([RatePoint(0, 1.0, None), RatePoint(5000, 3.0, 0.5)]))
    assert "<polyline" in chart and "3/s" in chart
