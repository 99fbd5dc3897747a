"""Reading Redis replies: the one place bytes become ``str``.

Clients may or may not decode responses (``decode_responses=True``), so every
reply value the storage layer hands upwards goes through :func:`text`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from scheduler.errors import ScriptError

__all__ = ["chunks", "ints", "text"]

T = TypeVar("T")


def text(value: object) -> str:
    """A Redis reply value as ``str`` (bytes are decoded as UTF-8, invalid
    sequences replaced)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def ints(reply: Any, expected: int) -> list[int]:
    """A script's array reply of ``expected`` integers.

    Raises:
        ScriptError: the reply is not a list of that length.
    """
    if not isinstance(reply, list) or len(reply) != expected:
        raise ScriptError(f"unexpected script reply {reply!r}")
    return [int(x) for x in reply]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
