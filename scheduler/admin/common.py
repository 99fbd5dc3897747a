"""Small helpers shared by the admin read-side modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import redis

__all__ = ["chunks", "server_now_ms", "text"]

T = TypeVar("T")


def text(value: object) -> str:
    """A Redis reply value as ``str`` (clients may or may not decode responses)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def server_now_ms(client: redis.Redis) -> int:
    """The Redis server's clock, in ms since the Unix epoch (``TIME``).

    Job records hold server times, so ages are measured against this clock,
    never the local one.
    """
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
