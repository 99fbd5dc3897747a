"""Job handles: result() blocking on pub/sub, timeouts, cancel, retry, reprioritize."""

from __future__ import annotations

import json
import threading

import pytest

from scheduler import (
    JobFailedError,
    JobNotFoundError,
    JobState,
    ResultTimeoutError,
    Scheduler,
)
from scheduler.backend.record import parse_record


def finish_in_background(app: Scheduler, queue: str, ok: bool) -> threading.Thread:
    """Lease and finish one job from another thread once result() is waiting."""

    def run() -> None:
        qk = app.queue_keys(queue)
        # Wait until the waiter subscribed: then the publish cannot be missed.
        while app.redis.pubsub_numsub(qk.finished_channel)[0][1] == 0:
            threading.Event().wait(0.005)
        job_id, text = app.scripts.lease(qk, 1, "w", "bg").jobs[0]
        token = parse_record(job_id, text).token
        if ok:
            app.scripts.complete(qk, [(job_id, token, json.dumps({"answer": 42}))])
        else:
            app.scripts.fail(qk, [(job_id, token, json.dumps({"error": "boom"}), -1)])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_result_blocks_until_published(app: Scheduler) -> None:
    job = app.enqueue("m:f")
    thread = finish_in_background(app, "default", ok=True)
    assert job.result(timeout=10) == {"answer": 42}
    thread.join(5)


def test_result_raises_for_dead_job(app: Scheduler) -> None:
    job = app.enqueue("m:f")
    thread = finish_in_background(app, "default", ok=False)
    with pytest.raises(JobFailedError, match="boom"):
        job.result(timeout=10)
    thread.join(5)


def test_result_timeout(app: Scheduler) -> None:
    job = app.enqueue("m:f")
    with pytest.raises(ResultTimeoutError, match="ready"):
        job.result(timeout=0)
    with pytest.raises(ResultTimeoutError):
        job.result(timeout=0.05)


def test_unknown_job(app: Scheduler) -> None:
    app.enqueue("m:f")
    ghost = app.job(app.enqueue("m:f").id)
    app.redis.hdel(app.queue_keys("default").jobs, ghost.id)
    with pytest.raises(JobNotFoundError):
        ghost.status  # noqa: B018
    with pytest.raises(JobNotFoundError):
        ghost.cancel()
    with pytest.raises(JobNotFoundError):
        ghost.result(timeout=0)


def test_reprioritize_run_now_retry(app: Scheduler) -> None:
    low = app.enqueue("m:f", priority=1)
    high = app.enqueue("m:f", priority=2)
    assert low.reprioritize(weight=3, time=2, resource=1)
    assert low.info().priority == 6.0 and low.info().inputs == (3.0, 2.0, 1.0)
    later = app.enqueue("m:f", delay=3600, priority=100)
    assert later.run_now() and later.status is JobState.READY
    qk = app.queue_keys("default")
    order = [j for j, _ in app.scripts.lease(qk, 3, "w", "r").jobs]
    assert order == [later.id, low.id, high.id]
    assert not low.reprioritize(5)  # leased
    assert low.cancel() and low.retry() and low.status is JobState.READY


def test_info_to_dict_is_json(app: Scheduler) -> None:
    job = app.enqueue("m:f", args=[1, "x"], kwargs={"k": None}, meta={"by": "test"})
    data = json.loads(json.dumps(job.info().to_dict()))
    assert data["args"] == [1, "x"] and data["kwargs"] == {"k": None}
    assert data["state"] == "ready" and data["meta"] == {"by": "test"}
    assert data["weight"] == 1.0 and data["priority"] == 1.0
