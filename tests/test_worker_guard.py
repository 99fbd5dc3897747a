"""The worker loop survives an unexpected exception in one job's bookkeeping
(issue: a bug in a report must not end the worker and crash-loop the next)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis

from scheduler import JobState, Scheduler
from tests.helpers import running, wait_until


def test_an_unexpected_error_in_a_round_is_logged_and_the_worker_goes_on(
    real_redis: redis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Scheduler(real_redis, prefix="guard")

    @app.task(queue="g")
    def echo(x: int) -> int:
        return x

    scripts_class = type(app.backend.scripts)
    real_complete_call = scripts_class.complete_call
    calls = {"n": 0}

    def broken_once(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bookkeeping bug")
        return real_complete_call(self, *args, **kwargs)

    monkeypatch.setattr(scripts_class, "complete_call", broken_once)
    first = echo.enqueue(1)
    with (
        caplog.at_level(logging.ERROR, logger="scheduler.worker"),
        running(app, queues=["g"], concurrency=2) as worker,
    ):
        wait_until(lambda: first.status is JobState.SUCCEEDED)
        second = echo.enqueue(2)
        assert second.result(timeout=10) == 2
        assert worker.backend is app.backend
    assert calls["n"] >= 2
    assert any("bookkeeping bug" in (r.exc_text or "") for r in caplog.records)
    assert first.result(timeout=0) == 1
