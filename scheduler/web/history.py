"""Throughput and failure rate over the last minutes.

Two sources, both read through the storage layer:

* the per-second buckets ``r:<second>`` the scripts keep in each queue's
  ``stats`` hash (finished attempts, the last 120 s): :func:`throughput_bins`
  turns them into jobs/s per bin at once, with no history needed;
* the cumulative ``succeeded`` and ``failed`` counters, sampled by
  :class:`RateHistory` each time the overview is read (at most one sample
  per ``min_interval_s``, kept for ``window_s``): jobs/s and the failure
  rate (failed attempts / finished attempts) between samples. The history
  lives in the dashboard process, so it starts empty and covers the time the
  dashboard has been open.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from scheduler.admin import QueueStatus

__all__ = ["RateHistory", "RatePoint", "throughput_bins"]


def throughput_bins(
    stats: Mapping[str, str], now_ms: int, *, span_s: int = 120, bin_s: int = 10
) -> list[float]:
    """Finished attempts per second in consecutive bins of ``bin_s`` seconds
    over the last ``span_s`` seconds (oldest first), from the ``r:<second>``
    buckets of a queue's ``stats`` hash. The current, incomplete second is
    left out. Unreadable buckets are skipped."""
    now_s = now_ms // 1000
    bins = [0] * (span_s // bin_s)
    first = now_s - len(bins) * bin_s  # the oldest second counted
    for name, value in stats.items():
        if not name.startswith("r:"):
            continue
        try:
            sec, n = int(name[2:]), int(value)
        except ValueError:
            continue
        if first <= sec < now_s:
            bins[(sec - first) // bin_s] += n
    return [n / bin_s for n in bins]


@attrs.frozen
class RatePoint:
    """Rates between two samples.

    Attributes:
        t_ms: server time of the later sample, ms.
        jobs_per_s: finished attempts (succeeded + failed) per second.
        failure_rate: failed / finished attempts (0..1), None if none finished.
    """

    t_ms: int
    jobs_per_s: float
    failure_rate: float | None


@attrs.define
class RateHistory:
    """Samples of each queue's ``succeeded``/``failed`` counters (thread-safe).

    Attributes:
        min_interval_s: samples closer than this to the previous one are
            dropped, seconds.
        window_s: how far back samples are kept, seconds.
    """

    min_interval_s: float = 5.0
    window_s: float = 900.0
    _samples: dict[str, deque[tuple[int, int, int]]] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def record(self, statuses: Iterable[QueueStatus], now_ms: int) -> None:
        """Add a sample of each queue's counters taken at server time ``now_ms``."""
        with self._lock:
            for status in statuses:
                samples = self._samples.setdefault(status.queue, deque())
                if samples and now_ms - samples[-1][0] < self.min_interval_s * 1000:
                    continue
                totals = status.totals
                samples.append((now_ms, totals["succeeded"], totals["failed"]))
                while samples and samples[0][0] < now_ms - self.window_s * 1000:
                    samples.popleft()

    def points(self, queue: str | None = None) -> list[RatePoint]:
        """Rates between consecutive samples of ``queue`` (None: all queues
        added up, on the sample times of the queue sampled most)."""
        with self._lock:
            series = list(self._samples.get(queue, ())) if queue is not None else self._summed()
        out = []
        for (t0, s0, f0), (t1, s1, f1) in itertools.pairwise(series):
            ds, df = max(0, s1 - s0), max(0, f1 - f0)
            seconds = max(0.001, (t1 - t0) / 1000)
            out.append(RatePoint(t1, (ds + df) / seconds, df / (ds + df) if ds + df else None))
        return out

    def failure_rate(self, queue: str | None = None) -> float | None:
        """Failed / finished attempts over the whole kept window, None if no
        attempt finished (or fewer than two samples)."""
        points = self.points(queue)
        if not points:
            return None
        with self._lock:
            series = list(self._samples.get(queue, ())) if queue else self._summed()
        ds = max(0, series[-1][1] - series[0][1])
        df = max(0, series[-1][2] - series[0][2])
        return df / (ds + df) if ds + df else None

    def _summed(self) -> list[tuple[int, int, int]]:
        """All queues added up at each sample time of the longest series
        (each queue at its latest sample not after that time)."""
        if not self._samples:
            return []
        base = max(self._samples.values(), key=len)
        out = []
        for t, _, _ in base:
            s_sum = f_sum = 0
            for samples in self._samples.values():
                last = None
                for sample in samples:
                    if sample[0] > t:
                        break
                    last = sample
                if last is not None:
                    s_sum += last[1]
                    f_sum += last[2]
            out.append((t, s_sum, f_sum))
        return out
