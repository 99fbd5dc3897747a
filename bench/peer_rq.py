"""Task functions for the RQ runs (imported by ``rq worker`` by dotted name)."""

from __future__ import annotations

import time


def noop() -> None:
    """Do nothing (throughput scenarios)."""


def stamp() -> float:
    """Return the wall-clock time at which the task started, seconds since the epoch."""
    return time.time()
