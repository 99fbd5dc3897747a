"""Conversions between API times (seconds, ``timedelta``, ``datetime``) and
the integer milliseconds used inside Redis. Pure functions.

Bounds (``docs/design.md``, "Limits"): a duration is at most
:data:`scheduler.defaults.MAX_DURATION` (100 years) and an ``eta`` lies
between the Unix epoch and :data:`scheduler.defaults.MAX_ETA_MS` (year 9999),
so every stored time stays an exact integer in Lua (below 2**53 ms) and
converts back to a ``datetime``. Anything else is a :class:`ValidationError`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from scheduler import defaults
from scheduler.errors import ValidationError
from scheduler.validation import shown

__all__ = ["datetime_to_ms", "ms_to_datetime", "seconds", "seconds_to_ms"]


def seconds(value: float | timedelta, name: str = "duration") -> float:
    """Return ``value`` in seconds (float).

    Args:
        value: seconds as ``int``/``float``, or a ``timedelta``.
        name: parameter name for the error message.

    Raises:
        ValidationError: not a number or ``timedelta`` (``bool`` included),
            not finite, negative, or over
            :data:`scheduler.defaults.MAX_DURATION` (100 years).
    """
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            result = float(value)
        except OverflowError:  # an int beyond the float range
            result = math.inf
    else:
        raise ValidationError(f"{name} must be seconds or a timedelta, got {shown(value)}")
    if not math.isfinite(result) or result < 0:
        raise ValidationError(f"{name} must be finite and >= 0 seconds, got {shown(value)}")
    if result > defaults.MAX_DURATION:
        raise ValidationError(
            f"{name} must be at most {defaults.MAX_DURATION:.0f} seconds (100 years), "
            f"got {shown(value)}"
        )
    return result


def seconds_to_ms(value: float | timedelta, name: str = "duration") -> int:
    """Return ``value`` (seconds or ``timedelta``) as whole milliseconds, rounded up
    so that a positive delay never becomes zero.

    Raises:
        ValidationError: as :func:`seconds`.
    """
    return math.ceil(seconds(value, name) * 1000)


def datetime_to_ms(when: datetime, name: str = "eta") -> int:
    """Return ``when`` as ms since the Unix epoch.

    A naive ``datetime`` is taken as local time (Python's convention for
    :meth:`datetime.timestamp`); pass an aware one to be explicit.

    Raises:
        ValidationError: not a ``datetime``, or before the Unix epoch
            (1970-01-01 UTC), or after
            :data:`scheduler.defaults.MAX_ETA_MS` (9999-01-01 UTC).
    """
    if not isinstance(when, datetime):
        raise ValidationError(f"{name} must be a datetime, got {shown(when)}")
    try:
        ms = math.ceil(when.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):  # year 0 or 10000 in local time
        ms = -1
    if not 0 <= ms <= defaults.MAX_ETA_MS:
        raise ValidationError(
            f"{name} must be between 1970-01-01 and 9999-01-01 UTC, got {shown(when)}"
        )
    return ms


def ms_to_datetime(ms: int) -> datetime:
    """Return ms since the Unix epoch as an aware UTC ``datetime``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
