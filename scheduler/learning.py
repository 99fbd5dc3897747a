"""Learned run times: per-task duration statistics and the run-time estimate (pure).

The statistics are kept by the server, inside ``lua/complete.lua``
(``lua/lib/stats.lua``); this module is their reader and the reference model
the tests compare the scripts with -- every float operation is the same, in
the same order, so Python and Lua agree bit for bit.

**What is measured.** A run's duration is ``finished - started`` on the
*server* clock, whole milliseconds: ``started_ms`` is stamped by
``lua/start.lua`` and the completion time is taken by ``lua/complete.lua``.
One clock for both ends, so worker clock skew never enters, and nothing
the statistics depend on is sent by a client (a buggy worker cannot poison
them with a bad number). The price: both ends are stamped when the
worker's round trip reaches Redis, not at the exact instant the function
starts and returns. The worker reports a start in its next loop turn and a
success in the round trip after it finishes, so each end is late by about
one round trip (typically under a millisecond) and the two delays largely
cancel; for sub-millisecond tasks the estimate is floored at 1 ms
(:data:`MIN_ESTIMATE`). Only successes count: a failure's run time (often
an early exception) says little about how long a success takes.

**How.** Weighted Welford: for the n-th run ``x`` (ms), with
``a = max(1/n, 1/STATS_WINDOW)``::

    diff = x - mean;  incr = a * diff;  mean += incr;  var = (1 - a) * (var + diff * incr)

(T. Finch, "Incremental calculation of weighted mean and variance",
University of Cambridge, 2009, section 9; D. H. D. West, "Updating mean and
variance estimates: an improved method", CACM 22(9), 1979.) With ``a = 1/n``
this is exactly Welford's method (B. P. Welford, Technometrics 4(3), 1962;
Knuth, TAOCP vol. 2, 3rd ed., 4.2.2) for the population variance. So the
first :data:`STATS_WINDOW` runs give the exact mean and variance, and after
that the weights decay exponentially (effective memory about
``STATS_WINDOW`` runs) -- a task whose run time drifts (growing data, a new
release) is followed instead of being averaged over its whole history.
Choice: Welford alone never forgets; a plain exponentially weighted average
is biased towards its starting value for the first runs. This variant has
neither flaw, and is numerically stable (no sums of squares).

**The estimate.** ``estimated_time = mean * (1 + alpha * cv)`` with ``cv =
sd / mean``, the coefficient of variation -- i.e. the mean plus ``alpha``
standard deviations, a one-sided upper estimate. The CV (not the raw
variance, in s^2) makes ``alpha`` unit-free and the inflation scale-free:
a 1 s +- 0.5 s task and a 100 s +- 50 s task are inflated by the same
factor. ``alpha`` defaults to :data:`scheduler.defaults.ALPHA`; until a
task has :data:`scheduler.defaults.MIN_SAMPLES` runs the job uses its
fallback time (:data:`scheduler.defaults.TIME`).
"""

from __future__ import annotations

import math
import re

import attrs

from scheduler import defaults
from scheduler.errors import InvalidPriorityError
from scheduler.priority import compact_float, resolve_priority
from scheduler.validation import shown, validate_finite

__all__ = [
    "AUTO",
    "MIN_ESTIMATE",
    "STATS_WINDOW",
    "TaskStats",
    "check_alpha",
    "check_min_samples",
    "estimated_time",
    "parse_stats_row",
    "resolve_inputs",
    "update_stats",
]

#: Runs over which the statistics are exact (Welford); later runs are
#: weighted 1/STATS_WINDOW (exponential forgetting). Same as ``STATS_WINDOW``
#: in ``lua/lib/stats.lua`` (a test checks).
STATS_WINDOW = 100

#: Smallest estimate, seconds: durations are whole milliseconds, so a mean of
#: 0 means "under a millisecond" (and ``time`` must be > 0).
MIN_ESTIMATE = 0.001

_ROW = re.compile(r"([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)")


@attrs.frozen
class TaskStats:
    """Run-time statistics of one task in one queue (successful runs).

    Attributes:
        task: task name.
        runs: successful runs measured.
        mean_ms: mean duration, ms.
        var_ms2: variance of the duration, ms^2 (population; exponentially
            weighted after :data:`STATS_WINDOW` runs).
        last_ms: when the last measured run finished, ms since the Unix
            epoch (server clock).
        last_duration_ms: duration of that run, ms.
    """

    task: str
    runs: int
    mean_ms: float
    var_ms2: float
    last_ms: int
    last_duration_ms: int

    @property
    def sd_ms(self) -> float:
        """Standard deviation of the duration, ms."""
        return math.sqrt(self.var_ms2)

    @property
    def cv(self) -> float:
        """Coefficient of variation ``sd / mean`` (0 when the mean is 0)."""
        return math.sqrt(self.var_ms2) / self.mean_ms if self.mean_ms > 0 else 0.0

    def estimate(self, alpha: float) -> float:
        """The learned run time in seconds for ``alpha`` (:func:`estimated_time`)."""
        return estimated_time(self.mean_ms, self.var_ms2, alpha)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict (durations in seconds)."""
        return {
            "task": self.task,
            "runs": self.runs,
            "mean_s": self.mean_ms / 1000,
            "sd_s": self.sd_ms / 1000,
            "cv": self.cv,
            "last_finished_ms": self.last_ms,
            "last_duration_s": self.last_duration_ms / 1000,
        }


def parse_stats_row(task: str, row: str) -> TaskStats | None:
    """Decode one ``taskstats`` field; None when it is damaged (the same
    checks as ``stats_decode`` in ``lua/lib/stats.lua``: five numbers, all
    finite and >= 0, runs a whole number >= 1)."""
    match = _ROW.fullmatch(row)
    if match is None:
        return None
    try:
        values = [float(v) for v in match.groups()]
    except ValueError:
        return None
    if not all(0 <= v < math.inf for v in values) or values[0] < 1 or values[0] % 1:
        return None
    n, mean, var, last, lastd = values
    return TaskStats(task, int(n), mean, var, int(last), int(lastd))


def update_stats(n: int, mean: float, var: float, x: float) -> tuple[int, float, float]:
    """One step of the weighted Welford update (see the module docstring);
    returns the new ``(n, mean, var)``. ``x`` in ms."""
    n += 1
    a = 1 / n
    a = max(a, 1 / STATS_WINDOW)
    diff = x - mean
    incr = a * diff
    return n, mean + incr, (1 - a) * (var + diff * incr)


def estimated_time(mean_ms: float, var_ms2: float, alpha: float) -> float:
    """``mean * (1 + alpha * cv)`` in **seconds**, at least
    :data:`MIN_ESTIMATE` (``stats_estimate`` in ``lua/lib/stats.lua``,
    operation for operation).

    Args:
        mean_ms: mean duration, ms (>= 0).
        var_ms2: variance, ms^2 (>= 0).
        alpha: inflation per unit of coefficient of variation (>= 0).
    """
    cv = math.sqrt(var_ms2) / mean_ms if mean_ms > 0 else 0.0
    est = (mean_ms / 1000) * (1 + alpha * cv)
    return max(est, MIN_ESTIMATE)


#: The ``time`` value asking for a learned run time.
AUTO = "auto"

#: Most ``min_samples`` accepted (a larger value would never be reached).
MAX_MIN_SAMPLES = 1_000_000


def check_alpha(value: object) -> float:
    """``alpha`` as a float: finite and >= 0.

    Raises:
        InvalidPriorityError: anything else (a :class:`ValidationError`).
    """
    return validate_finite("alpha", value, minimum=0.0)


def check_min_samples(value: object) -> int:
    """``min_samples`` if it is an ``int`` in ``[1, MAX_MIN_SAMPLES]``.

    Raises:
        InvalidPriorityError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MIN_SAMPLES:
        raise InvalidPriorityError(
            f"min_samples must be an int in [1, {MAX_MIN_SAMPLES}], got {shown(value)}"
        )
    return value


def resolve_inputs(
    priority: float | None,
    weight: float,
    time: float | str,
    resource: float,
    alpha: float = defaults.ALPHA,
    min_samples: int = defaults.MIN_SAMPLES,
) -> tuple[float, str]:
    """``(priority, inputs)`` of a job, as sent to ``lua/enqueue.lua``.

    ``time`` is seconds, or ``"auto"`` for a learned run time: then the
    priority is computed with the fallback time :data:`scheduler.defaults.TIME`
    and ``inputs`` is ``"weight,time,resource,alpha,min_samples"``; the
    enqueue script replaces both by the learned estimate once the task has
    ``min_samples`` runs (``lua/lib/stats.lua``). Otherwise as
    :func:`scheduler.priority.resolve_priority`.

    Raises:
        InvalidPriorityError: a bad ``time`` string, ``alpha`` or
            ``min_samples``, or as :func:`scheduler.priority.resolve_priority`.
    """
    if isinstance(time, str):
        if time != AUTO:
            raise InvalidPriorityError(f"time must be a number of seconds or 'auto', got {time!r}")
        a, m = check_alpha(alpha), check_min_samples(min_samples)
        value, inputs = resolve_priority(priority, weight, defaults.TIME, resource)
        if priority is not None:
            return value, inputs
        return value, f"{inputs},{compact_float(a)},{m}"
    check_alpha(alpha)
    check_min_samples(min_samples)
    return resolve_priority(priority, weight, time, resource)
