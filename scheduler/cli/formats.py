"""Times and durations of the admin commands, as shown and as typed: local
time with its UTC offset, or UTC under ``--utc``; durations such as ``5m``
(conventions: :mod:`scheduler.cli.common`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import click

from scheduler.cli.common import CliConfig, config, fail

__all__ = [
    "format_age",
    "format_stamp",
    "format_time",
    "parse_duration",
    "use_utc",
]


def format_age(seconds: float | None) -> str:
    """``12.3s``, ``4m05s``, ``2h03m``, ``3d04h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + format_age(-seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def use_utc() -> bool:
    """True if this invocation shows times in UTC (``--utc``), else local."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_object(CliConfig) and config(ctx).utc)


def format_stamp(when: datetime, *, utc: bool | None = None) -> str:
    """``when`` to the millisecond with its zone: ``... UTC`` under ``--utc``,
    else local time with its UTC offset (``2030-01-02 03:04:05.678 +01:00``)."""
    if utc is None:
        utc = use_utc()
    if utc:
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    local = when.astimezone()
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + f" {offset[:3]}:{offset[3:]}"


def format_time(when: datetime | None, now: datetime | None = None) -> str:
    """Time to the millisecond with its zone (:func:`format_stamp`), with the
    distance to ``now`` if given."""
    if when is None:
        return "-"
    shown = format_stamp(when)
    if now is None:
        return shown
    delta = (when - now).total_seconds()
    rel = f"in {format_age(delta)}" if delta >= 0 else f"{format_age(-delta)} ago"
    return f"{shown} ({rel})"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"1.5m"``, ``"2h"``, ``"1d"``, ``"500ms"``.

    A duration must be one a ``datetime`` can add to the current time
    (under about 7,900 years: the calendar ends in 9999). The library
    applies its own, tighter bounds where it has them (exit 2 as well).

    Raises:
        CliError: (exit 2) not a finite, non-negative duration in that range.
    """
    match = _DURATION_RE.match(text)
    if not match:
        fail(f"{option}: {text!r} is not a duration (e.g. 30, 30s, 5m, 2h, 1d, 500ms)", 2)
    value = float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        if not math.isfinite(value):
            raise OverflowError
        datetime.now(UTC) + timedelta(seconds=value)
    except OverflowError:
        fail(f"{option}: {text!r} is too large", 2)
    return value
