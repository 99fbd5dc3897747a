"""Helpers for testing your own tasks (``docs/testing.md``).

* :func:`fake_app`: a :class:`scheduler.Scheduler` on an in-memory fakeredis
  server (with Lua), the async API included -- no Redis needed.
* :func:`run_jobs`: burst mode -- run every ready and due job (and the jobs
  they enqueue) in this process, then return.
* the pytest fixture ``scheduler_app`` (a fresh :func:`fake_app` per test),
  registered by the package's ``pytest11`` entry point, or imported:
  ``from scheduler.testing import scheduler_app``.

fakeredis runs the real Lua scripts, so what passes here runs the same code
path as production; run the suite against a real server too when you rely on
timing, Cluster or Sentinel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scheduler.app import Scheduler
from scheduler.errors import ValidationError
from scheduler.worker import Worker

__all__ = ["fake_app", "run_jobs", "scheduler_app"]


def fake_app(**kwargs: Any) -> Scheduler:
    """A :class:`Scheduler` on a new, empty in-memory server (fakeredis with
    Lua); keyword arguments go to :class:`Scheduler` (``codec=``,
    ``before_enqueue=``, ``prefix=``, ...).

    Raises:
        ValidationError: fakeredis (with its ``lua`` extra) is not installed:
            ``pip install 'fakeredis[lua]'``.
    """
    try:
        import fakeredis
    except ImportError:
        raise ValidationError("fake_app needs fakeredis: pip install 'fakeredis[lua]'") from None
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    kwargs.setdefault("async_client", fakeredis.FakeAsyncRedis(server=server))
    return Scheduler(client, **kwargs)


def run_jobs(
    app: Scheduler, queues: list[str] | None = None, *, timeout: float = 30.0, **worker: Any
) -> bool:
    """Run every ready and due job of ``queues`` (default: the queues of the
    app's tasks), and what they enqueue, with a :class:`Worker` in this
    process; return when none is left (True) or after ``timeout`` seconds
    (False). A retry whose backoff has not ended is left waiting: give the
    task ``backoff=Backoff(base=0)`` in tests or call again after it is due.

    Other keyword arguments go to :class:`Worker` (``concurrency=`` ...).
    """
    return Worker(app, queues, **worker).run_until_empty(timeout)


def _scheduler_app() -> Iterator[Scheduler]:
    """A fresh :func:`fake_app` for one test (closed afterwards)."""
    app = fake_app()
    try:
        yield app
    finally:
        app.close()


try:  # pytest is not a dependency of the package: the fixture exists with it
    import pytest
except ImportError:  # pragma: no cover
    pass
else:
    scheduler_app = pytest.fixture(name="scheduler_app")(_scheduler_app)
