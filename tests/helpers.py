"""Helpers for tests: run a worker for a block, wait for a condition.

Plain functions imported by the tests (``from tests.helpers import running``);
fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from scheduler import Scheduler, Worker


@contextmanager
def running(app: Scheduler, **kwargs: Any) -> Iterator[Worker]:
    """A :class:`Worker` running in a thread for the duration of the block;
    stopped (grace ``kwargs["grace"]`` or 5 s) and joined afterwards."""
    worker = Worker(app, **kwargs)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop(grace=kwargs.get("grace", 5.0))
        thread.join(timeout=15)
        assert not thread.is_alive()


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Wait for a condition that depends on time passing (lease expiry, ETAs).

    Fails the test if it is not met within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)
