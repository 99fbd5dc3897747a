"""Conversions between API times (seconds, ``timedelta``, ``datetime``) and
the integer milliseconds used inside Redis. Pure functions."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from scheduler.errors import ValidationError

__all__ = ["datetime_to_ms", "ms_to_datetime", "seconds", "seconds_to_ms"]


def seconds(value: float | timedelta, name: str = "duration") -> float:
    """Return ``value`` in seconds (float).

    Args:
        value: seconds as ``int``/``float``, or a ``timedelta``.
        name: parameter name for the error message.

    Raises:
        ValidationError: not finite, negative, or of another type.
    """
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise ValidationError(f"{name} must be seconds or a timedelta, got {value!r}")
    if not math.isfinite(result) or result < 0:
        raise ValidationError(f"{name} must be finite and >= 0 seconds, got {value!r}")
    return result


def seconds_to_ms(value: float | timedelta, name: str = "duration") -> int:
    """Return ``value`` (seconds or ``timedelta``) as whole milliseconds, rounded up
    so that a positive delay never becomes zero."""
    return math.ceil(seconds(value, name) * 1000)


def datetime_to_ms(when: datetime) -> int:
    """Return ``when`` as ms since the Unix epoch.

    A naive ``datetime`` is taken as local time (Python's convention for
    :meth:`datetime.timestamp`); pass an aware one to be explicit.
    """
    if not isinstance(when, datetime):
        raise ValidationError(f"eta must be a datetime, got {when!r}")
    return math.ceil(when.timestamp() * 1000)


def ms_to_datetime(ms: int) -> datetime:
    """Return ms since the Unix epoch as an aware UTC ``datetime``."""
    from datetime import UTC

    return datetime.fromtimestamp(ms / 1000, tz=UTC)
