"""Concurrency and rate limits of a queue and its tasks (pure: parsing and layout).

Limits are enforced by the lease script (``lua/lib/limits.lua``), so they
hold exactly across all workers:

* ``concurrency`` (``max_concurrent``): leases held at once, per queue or per
  task of a queue.
* ``rate`` ``N/period``: leases per period, as a **token bucket** of size
  ``N`` refilled continuously at ``N`` per period: at most ``N`` at once and
  ``N`` per period in the long run; over any window of ``W`` the number of
  leases is at most ``N + N * W / period`` (so a window of one period may
  hold up to ``2N`` when a full bucket is spent at its start). Chosen over a
  sliding-window log, which is exact per window but keeps one timestamp per
  lease (``N`` per scope, rewritten at every lease); the bucket is two numbers.

A job a limit holds back stays ready in its place; workers wait until the
limit frees (the lease reply's wake time says when a rate frees up; a
completion wakes an idle worker when the queue has limits). Limits count
leases, which are starts unless the worker buffers jobs (``prefetch``).

Stored in the queue's ``limits`` hash (``P:{Q}:limits``) as fields
``conc:<scope>`` and ``rate:<scope>`` (``"N/period_ms"``), where the scope
is ``""`` for the queue itself or a task name.
"""

from __future__ import annotations

import math
import re

import attrs

from scheduler.errors import ValidationError
from scheduler.validation import shown

__all__ = [
    "MAX_LIMIT",
    "QueueLimits",
    "Rate",
    "check_concurrency",
    "parse_limits",
    "parse_rate",
]

#: Largest concurrency or rate count accepted.
MAX_LIMIT = 1_000_000_000

#: Longest rate period accepted: one year, ms.
MAX_PERIOD_MS = 366 * 86_400_000

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_RATE_RE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]*\.?[0-9]*)\s*(ms|s|min|m|h|d)\s*")


@attrs.frozen
class Rate:
    """A rate limit: ``count`` leases per ``period_ms`` milliseconds.

    Attributes:
        count: leases per period (1 ..  :data:`MAX_LIMIT`); also the bucket size.
        period_ms: the period, ms (>= 1).
    """

    count: int
    period_ms: int

    def encode(self) -> str:
        """The stored form ``"count/period_ms"``."""
        return f"{self.count}/{self.period_ms}"

    def __str__(self) -> str:
        for unit in ("d", "h", "m", "s"):
            size = _UNITS_MS[unit]
            if self.period_ms % size == 0:
                n = self.period_ms // size
                return f"{self.count}/{'' if n == 1 else n}{unit}"
        return f"{self.count}/{self.period_ms}ms"


def parse_rate(text: str) -> Rate:
    """Parse ``"N/period"``: ``N`` an integer >= 1, ``period`` a unit
    (``ms``, ``s``, ``m``/``min``, ``h``, ``d``) with an optional positive
    number before it -- ``"100/m"``, ``"20/2s"``, ``"5/1.5h"``.

    Raises:
        ValidationError: the text does not parse, ``N`` is out of range, or
            the period is under 1 ms or over a year.
    """
    match = _RATE_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(
            f"rate must look like 100/m, 20/2s or 5/h (N per period), got {shown(text)}"
        )
    count = int(match[1])
    number = match[2]
    try:
        amount = float(number) if number not in ("", ".") else (1.0 if number == "" else -1.0)
    except ValueError:
        amount = -1.0
    period_ms = amount * _UNITS_MS[match[3]]
    if not 1 <= count <= MAX_LIMIT:
        raise ValidationError(f"rate count must be in [1, {MAX_LIMIT}], got {shown(text)}")
    if not (math.isfinite(period_ms) and 1 <= period_ms <= MAX_PERIOD_MS):
        raise ValidationError(f"rate period must be 1 ms to a year, got {shown(text)}")
    return Rate(count, round(period_ms))


def check_concurrency(value: object) -> int:
    """``value`` if it is an ``int`` in ``[1, MAX_LIMIT]``.

    Raises:
        ValidationError: anything else (0, negative, a float, a bool).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError(f"concurrency must be an int in [1, {MAX_LIMIT}], got {shown(value)}")
    return value


@attrs.frozen
class QueueLimits:
    """The limits of one queue and of its tasks.

    Attributes:
        concurrency: leases the queue may hold at once, or None.
        rate: the queue's rate limit, or None.
        task_concurrency: task name -> its concurrency limit.
        task_rate: task name -> its rate limit.
        held: task name -> job ids counted under its concurrency limit
            (their leases may have ended since: the lease script prunes).
    """

    concurrency: int | None = None
    rate: Rate | None = None
    task_concurrency: dict[str, int] = attrs.field(factory=dict)
    task_rate: dict[str, Rate] = attrs.field(factory=dict)
    held: dict[str, list[str]] = attrs.field(factory=dict)

    @property
    def empty(self) -> bool:
        """True when no limit is set."""
        return not (self.concurrency or self.rate or self.task_concurrency or self.task_rate)

    def describe(self) -> str:
        """One line, e.g. ``"concurrency 4, rate 100/m; task t: concurrency 1"``."""
        parts = []
        if self.concurrency:
            parts.append(f"concurrency {self.concurrency}")
        if self.rate:
            parts.append(f"rate {self.rate}")
        text = ", ".join(parts)
        for task in sorted(set(self.task_concurrency) | set(self.task_rate)):
            own = []
            if task in self.task_concurrency:
                own.append(f"concurrency {self.task_concurrency[task]}")
            if task in self.task_rate:
                own.append(f"rate {self.task_rate[task]}")
            text += f"{'; ' if text else ''}task {task}: {', '.join(own)}"
        return text or "none"

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly dict (rates as ``{"count", "period_s"}``)."""

        def rate(r: Rate | None) -> dict[str, float] | None:
            return None if r is None else {"count": r.count, "period_s": r.period_ms / 1000}

        return {
            "concurrency": self.concurrency,
            "rate": rate(self.rate),
            "tasks": {
                t: {
                    "concurrency": self.task_concurrency.get(t),
                    "rate": rate(self.task_rate.get(t)),
                }
                for t in sorted(set(self.task_concurrency) | set(self.task_rate))
            },
        }


def _stored_rate(text: str) -> Rate | None:
    match = re.fullmatch(r"([0-9]{1,10})/([0-9]{1,12})", text)
    if match is None or int(match[1]) < 1 or int(match[2]) < 1:
        return None
    return Rate(int(match[1]), int(match[2]))


def parse_limits(fields: dict[str, str]) -> QueueLimits:
    """Decode a ``limits`` hash (field -> value text). Malformed settings are
    ignored, as ``limits_load`` in ``lua/lib/limits.lua`` ignores them."""
    conc: int | None = None
    rate: Rate | None = None
    tconc: dict[str, int] = {}
    trate: dict[str, Rate] = {}
    held: dict[str, list[str]] = {}
    for field, value in fields.items():
        kind, _, scope = field.partition(":")
        if kind == "conc" and value.isascii() and value.isdigit() and int(value) >= 1:
            if scope:
                tconc[scope] = int(value)
            else:
                conc = int(value)
        elif kind == "rate" and (r := _stored_rate(value)) is not None:
            if scope:
                trate[scope] = r
            else:
                rate = r
        elif kind == "held" and scope:
            held[scope] = [i for i in value.split(",") if i]
    return QueueLimits(conc, rate, tconc, trate, held)
