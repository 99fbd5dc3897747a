"""App of the worker subprocesses in tests/test_inputs.py (URL and prefix from
the environment): tasks whose error text or result is not valid Unicode."""

from __future__ import annotations

import os

from scheduler import Scheduler

app = Scheduler.from_url(
    os.environ.get("SCHEDULER_TEST_URL", "redis://127.0.0.1:6379/15"),
    prefix=os.environ.get("SCHEDULER_TEST_PREFIX", "i"),
)

#: ``b"\xff"`` decoded the way file names are: a lone surrogate ("\udcff").
BAD_TEXT = os.fsdecode(b"\xff")


@app.task(max_attempts=1)
def raise_bad_text() -> None:
    """Raises an exception whose message is not valid Unicode."""
    raise RuntimeError(f"cannot open {BAD_TEXT}")


@app.task(max_attempts=1)
def return_bad_text() -> str:
    """Returns text that is not valid Unicode."""
    return f"name {BAD_TEXT}"


class UnprintableError(Exception):
    """An exception whose ``str()`` itself fails."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@app.task(max_attempts=1)
def raise_unprintable() -> None:
    """Raises an exception that cannot be turned into text."""
    raise UnprintableError()


@app.task
def ok(x: int) -> int:
    """Returns its argument."""
    return x
