"""Pure scheduling math: priority, ready score, members, backoff.

Nothing here talks to Redis; the Lua scripts perform the same float
operations (IEEE 754 doubles in both languages), so these functions are also
the reference model the property tests compare Redis's dispatch order with.

Ordering (docs/design.md, "Ordering"):

* ``priority = weight * time / resource`` (the priority formula; ``weight``
  >= 0, ``time`` = estimated run time in seconds > 0, ``resource`` = units of
  capacity > 0, all finite). An explicit ``priority`` overrides it. Higher
  runs first.
* With per-queue ``aging`` the queue keeps an **aging clock** ``A(t)``: the
  integral of its aging rate (priority units per second) over time, from the
  queue's first rate change (its time origin). A job's effective priority
  at time ``now`` is ``priority + A(now) - A(ready)``: its priority plus the
  aging accrued, at each rate in force, while it waited. ``A(now)`` is
  common to all jobs, so ordering by it descending equals ordering by the
  time-independent ``score = A(ready) - priority`` ascending: nothing is
  rescored when time passes or the rate changes. ``A`` is piecewise linear
  (:class:`AgingClock` is its current piece); each job stores ``A(ready)``
  (its *aging stamp*, record field ``aged``) when it becomes ready. With no
  aging ``A = 0`` and ``score = -priority`` (exact: negation never rounds).
* Ties (equal score) are broken by the ready-set member
  ``<9 base-62 digit sequence>:<job id>``: Redis orders equal scores by member
  bytes, and the fixed-width per-queue sequence (digits ``0-9A-Za-z``, in
  ASCII order) makes that enqueue order.
"""

from __future__ import annotations

import math
import random
from typing import Final, NamedTuple

from scheduler.errors import InvalidPriorityError
from scheduler.validation import validate_finite

__all__ = [
    "MAX_AGING_RATE",
    "SEQ_DIGITS",
    "AgingClock",
    "backoff_delay",
    "compact_float",
    "compute_priority",
    "format_seq",
    "make_member",
    "member_job_id",
    "ready_score",
    "resolve_priority",
    "validate_aging_rate",
]

#: Base-62 digits of the per-queue sequence in ready/delayed members. 62**9
#: is beyond 2**53, the largest integer a Lua number holds exactly, so the
#: fixed width (and hence FIFO order) can never overflow. (16 hex digits would
#: do as well, but 9 keep a member with a 16-character id within 32 bytes of
#: memory in Redis instead of 48.)
SEQ_DIGITS = 9
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def compute_priority(weight: float, time: float, resource: float) -> float:
    """Return ``weight * time / resource`` (the priority formula).

    Args:
        weight: importance, >= 0, finite.
        time: estimated run time in **seconds**, > 0, finite.
        resource: units of capacity the job needs, > 0, finite.

    Returns:
        The priority (float, finite). Higher runs first.

    Raises:
        InvalidPriorityError: an input is out of range or not finite, or the
            result overflows to infinity.
    """
    w = validate_finite("weight", weight, minimum=0.0)
    t = validate_finite("time", time, minimum=0.0, strict=True)
    r = validate_finite("resource", resource, minimum=0.0, strict=True)
    result = w * t / r
    return validate_finite("priority (weight * time / resource)", result)


def resolve_priority(
    priority: float | None, weight: float, time: float, resource: float
) -> tuple[float, str]:
    """Return ``(priority, inputs)`` for a job.

    ``inputs`` is ``"weight,time,resource"`` (:func:`compact_float` of each) when the
    formula was used, ``""`` when an explicit ``priority`` overrides it. An
    explicit priority may be any finite float, negative included.

    Raises:
        InvalidPriorityError: as :func:`compute_priority`, or a non-finite
            explicit priority.
    """
    if priority is not None:
        return validate_finite("priority", priority), ""
    value = compute_priority(weight, time, resource)
    # The validated inputs (-0.0 read as 0.0, like the priority), as stored.
    w, t, r = (
        validate_finite(n, v)
        for n, v in (("weight", weight), ("time", time), ("resource", resource))
    )
    return value, f"{compact_float(w)},{compact_float(t)},{compact_float(r)}"


#: Largest accepted aging rate, priority units per second (``lua/queue_config.lua``
#: ``AGING_MAX`` is the same). Why: at this rate the aging clock stays below
#: 2**53 for 285 years of continuous aging, so scores stay finite and keep a
#: resolution of at most one priority unit (``ulp(A) <= 1``; far finer on a
#: younger clock, ``ulp(A) ~ A * 2.2e-16``) -- larger rates would let the
#: accrued aging swamp any priority gap within milliseconds and, as 1e300
#: did, overflow the scores to infinity (every job tied: silent FIFO).
MAX_AGING_RATE: Final = 1e6


def validate_aging_rate(rate: object) -> float:
    """Return ``rate`` as a float if it is an accepted aging rate.

    Args:
        rate: priority units gained per second of waiting; an ``int`` or
            ``float`` (``bool`` is rejected) in ``[0, MAX_AGING_RATE]``.
            ``-0.0`` is read as ``0.0``.

    Raises:
        InvalidPriorityError: not a real number, not finite, negative, or
            above :data:`MAX_AGING_RATE`.
    """
    value = validate_finite("aging", rate, minimum=0.0)
    if value > MAX_AGING_RATE:
        raise InvalidPriorityError(f"aging must be <= {MAX_AGING_RATE:g} per second, got {rate!r}")
    return value


class AgingClock(NamedTuple):
    """The current piece of a queue's aging clock ``A(t)`` (see the module docstring).

    Attributes:
        rate: priority units per second, in force since ``since_ms``.
        since_ms: server time of the last rate change, ms since the Unix epoch.
        at: ``A(since_ms)``, priority units.
    """

    rate: float = 0.0
    since_ms: int = 0
    at: float = 0.0

    def value_at(self, t_ms: int) -> float:
        """``A(t_ms)`` for ``t_ms >= since_ms`` (ms since the Unix epoch).

        Mirrors ``clock_at`` in ``lua/lib/record.lua`` operation for
        operation (``at + rate * ((t - since) / 1000)``), so the result is
        bit-identical to the stamp Redis stores.
        """
        if self.rate == 0:
            return self.at
        return self.at + self.rate * ((t_ms - self.since_ms) / 1000)


def ready_score(priority: float, aged: float = 0.0) -> float:
    """Return the ready-set score (lower is dispatched first).

    Mirrors ``ready_score`` in ``lua/lib/record.lua`` operation for
    operation, so the result is bit-identical to what Redis stores.

    Args:
        priority: the job's priority (float).
        aged: the job's aging stamp ``A(ready)`` (priority units; 0 on a
            queue that never aged).
    """
    if aged == 0:
        return -priority
    return aged - priority


def format_seq(seq: int) -> str:
    """``seq`` (0 <= seq < 62**9) as :data:`SEQ_DIGITS` base-62 digits, ASCII-ordered."""
    if not 0 <= seq < 62**SEQ_DIGITS:
        raise ValueError(f"sequence out of range: {seq}")
    digits = []
    for _ in range(SEQ_DIGITS):
        seq, d = divmod(seq, 62)
        digits.append(_B62[d])
    return "".join(reversed(digits))


def make_member(seq: int, job_id: str) -> str:
    """Return the ready/delayed set member ``<seq in base 62>:<job id>``."""
    return f"{format_seq(seq)}:{job_id}"


def compact_float(value: float) -> str:
    """Shortest exact text of ``value``: ``repr`` without a trailing ``.0``
    (``1.0`` -> ``"1"``, ``0.5`` -> ``"0.5"``, ``1e+20`` unchanged). Both
    Python's ``float`` and Lua's ``tonumber`` read it back exactly."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def member_job_id(member: str) -> str:
    """Return the job id part of a ready/delayed set member."""
    return member[SEQ_DIGITS + 1 :]


def backoff_delay(
    attempt: int,
    base: float,
    maximum: float,
    *,
    factor: float = 2.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Return the retry delay in **seconds** after failed attempt ``attempt``.

    Capped exponential backoff with jitter, after M. Brooker, "Exponential
    Backoff And Jitter", AWS Architecture Blog (2015)::

        d = min(maximum, base * factor ** (attempt - 1))
        delay = d * (1 - jitter * U),   U uniform in [0, 1)

    ``jitter=0`` is no jitter, ``0.5`` "equal jitter" (the default: at least
    half of ``d``), ``1`` "full jitter".

    Args:
        attempt: the attempt that failed, >= 1.
        base: delay after the first failure, seconds >= 0.
        maximum: cap, seconds >= ``base``.
        factor: growth per attempt, >= 1.
        jitter: fraction of ``d`` randomised, in [0, 1].
        rng: random source (``random`` module functions if None).

    Raises:
        ValueError: an argument is out of range.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if not (base >= 0 and maximum >= base and factor >= 1 and 0 <= jitter <= 1):
        raise ValueError("need 0 <= base <= maximum, factor >= 1, 0 <= jitter <= 1")
    exponent = min(attempt - 1, 1024)  # avoid OverflowError; the cap applies anyway
    try:
        grown = base * factor**exponent
    except OverflowError:
        grown = math.inf
    d = min(maximum, grown)
    u = (rng or random).random()
    return d * (1.0 - jitter * u)
