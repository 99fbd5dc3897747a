"""Writing tasks: the job's context, Retry/Fail, backoff policies and progress,
on a real Redis server."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from scheduler import (
    Backoff,
    Delays,
    Fail,
    JobFailedError,
    JobState,
    NoJobContextError,
    PerException,
    Retry,
    Scheduler,
    current_job,
    set_progress,
)
from scheduler.backend.codes import ProgressCode
from scheduler.context import JobContext, job_context
from scheduler.errors import ValidationError
from scheduler.task import DelayFunction, backoff_policy
from tests.helpers import running, wait_until


def _fields(job: JobContext) -> dict[str, Any]:
    return {
        "id": job.id,
        "task": job.task,
        "queue": job.queue,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "meta": dict(job.meta),
        "eta": job.eta,
        "enqueued_at": job.enqueued_at,
        "lease_left": job.lease_deadline - time.time(),
        "time_left": job.time_left(),
        "worker": job.worker_id,
    }


def test_current_job_in_a_thread(real_app: Scheduler) -> None:
    @real_app.task(queue="ctx", max_attempts=4, lease=30, timeout=20)
    def describe() -> dict[str, Any]:
        return _fields(current_job())

    job = describe.options(meta={"tenant": "acme"}, delay=0.2).enqueue()
    with running(real_app, queues=["ctx"]) as worker:
        got = job.result(timeout=10)
    info = job.info()
    assert got["id"] == job.id and got["task"] == describe.name and got["queue"] == "ctx"
    assert got["attempt"] == 1 and got["max_attempts"] == 4
    assert got["meta"] == {"tenant": "acme"}
    assert got["eta"] == pytest.approx(info.ready_at.timestamp(), abs=0.002)
    assert got["eta"] - got["enqueued_at"] == pytest.approx(0.2, abs=0.01)
    assert 25 < got["lease_left"] <= 30 and 15 < got["time_left"] <= 20
    assert got["worker"] == worker.worker_id


def test_current_job_in_an_async_task(real_app: Scheduler) -> None:
    @real_app.task
    async def describe() -> dict[str, Any]:
        return _fields(current_job())

    job = describe.enqueue()
    with running(real_app):
        got = job.result(timeout=10)
    assert got["id"] == job.id and got["attempt"] == 1 and got["time_left"] is None


def test_current_job_outside_a_worker() -> None:
    with pytest.raises(NoJobContextError):
        current_job()
    with pytest.raises(NoJobContextError):
        set_progress(0.5)
    ctx = JobContext("j", "t", "q", 1, 3, {}, 0.0, 0.0, 0.0)
    with job_context(ctx):
        assert current_job() is ctx
    with pytest.raises(NoJobContextError):
        current_job()


def test_retry_with_a_delay_counts_an_attempt_and_ignores_retry_on(
    real_app: Scheduler,
) -> None:
    @real_app.task(retry_on=(), max_attempts=3)
    def flaky() -> int:
        attempt = current_job().attempt
        if attempt < 3:
            raise Retry(delay=0.3, reason="not yet")
        return attempt

    job = flaky.enqueue()
    started = time.monotonic()
    with running(real_app):
        assert job.result(timeout=20) == 3
    assert time.monotonic() - started >= 0.6  # two retries, 0.3 s apart at least
    assert job.info().attempts == 3


def test_retry_on_the_last_attempt_goes_dead(real_app: Scheduler) -> None:
    @real_app.task(max_attempts=2)
    def never() -> None:
        raise Retry(delay=0)

    job = never.enqueue()
    with running(real_app), pytest.raises(JobFailedError, match="retry requested"):
        job.result(timeout=10)
    assert job.info().attempts == 2 and job.info().state is JobState.DEAD


def test_fail_goes_dead_now(real_app: Scheduler) -> None:
    @real_app.task(max_attempts=5)
    def hopeless() -> None:
        raise Fail("address does not exist")

    job = hopeless.enqueue()
    with running(real_app), pytest.raises(JobFailedError, match="address does not exist"):
        job.result(timeout=10)
    info = job.info()
    assert info.state is JobState.DEAD and info.attempts == 1
    assert info.error is not None and info.error["type"] == "Fail"


def test_retry_validates_its_delay() -> None:
    for bad in (-1, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ValidationError):
            Retry(delay=bad)  # type: ignore[arg-type]


# -- backoff policies -----------------------------------------------------------


def test_backoff_policies() -> None:
    assert [Delays([1, 5, 30]).delay(a) for a in (1, 2, 3, 4, 9)] == [1, 5, 30, 30, 30]
    seen: list[tuple[int, BaseException | None]] = []

    def fn(attempt: int, exc: BaseException | None) -> float:
        seen.append((attempt, exc))
        return attempt * 2.0

    err = KeyError("x")
    assert DelayFunction(fn).delay(3, err) == 6.0 and seen == [(3, err)]
    broken = DelayFunction(lambda a, e: float("nan"), fallback=Backoff(base=7, jitter=0))
    assert broken.delay(1) == 7.0  # a bad answer falls back, the retry is not lost
    per = backoff_policy({ConnectionError: [0.5], KeyError: lambda a, e: 9.0})
    assert isinstance(per, PerException)
    assert per.delay(1, ConnectionRefusedError()) == 0.5
    assert per.delay(1, KeyError()) == 9.0
    assert 0.5 <= per.delay(1, ValueError()) <= 1.0  # the default Backoff
    for bad in ([], [-1], "fast", {"x": [1]}, {KeyError: {ValueError: [1]}}, 5):
        with pytest.raises(ValidationError):
            backoff_policy(bad)


def test_backoff_per_exception_type_on_a_worker(real_app: Scheduler) -> None:
    @real_app.task(backoff={ConnectionError: [0.05], Exception: [3600]}, max_attempts=3)
    def blip() -> int:
        attempt = current_job().attempt
        if attempt == 1:
            raise ConnectionError("database restarting")
        return attempt

    job = blip.enqueue()
    with running(real_app):
        assert job.result(timeout=10) == 2  # retried after 0.05 s, not an hour


def test_default_policy_rides_out_a_five_second_outage() -> None:
    """Ten attempts at the default backoff: even with the most jitter, the
    attempts spent during a 5 s outage leave the job alive."""
    from scheduler import defaults

    backoff = Backoff(jitter=0.0)
    least = [backoff.delay(a) * (1 - defaults.BACKOFF_JITTER) for a in range(1, 20)]
    spent = next(n for n in range(1, 20) if sum(least[:n]) >= 5.0) + 1
    assert spent < defaults.MAX_ATTEMPTS


# -- progress ---------------------------------------------------------------------


def test_progress_is_visible_on_the_handle_and_in_the_events(real_app: Scheduler) -> None:
    proceed = threading.Event()

    @real_app.task
    def resize() -> str:
        set_progress(0.25, "resized 1 of 4")
        assert proceed.wait(10)
        return "done"

    job = resize.enqueue()
    with running(real_app):
        wait_until(lambda: job.progress is not None)
        progress = job.progress
        assert progress is not None
        assert progress.value == 0.25 and progress.message == "resized 1 of 4"
        assert abs(progress.at - time.time()) < 5
        proceed.set()
        assert job.result(timeout=10) == "done"
    (entries,) = real_app.backend.recent_event_entries(["default"], 20)
    found = [e.fields for e in entries if e.fields["e"] == "progress"]
    assert found and found[0]["j"] == job.id and "resized 1 of 4" in found[0]["d"]


def test_progress_is_fenced_by_the_lease_and_swept_after_the_job(app: Scheduler) -> None:
    """On a real server and on fakeredis (scheduler.testing), which answers
    HRANDFIELD on a missing hash with nil: the first write of a queue's
    progress failed there ("bad argument #1 to 'ipairs'"), so a task calling
    set_progress under fake_app() could never succeed."""
    backend = app.backend
    old, new = app.enqueue("m:f"), app.enqueue("m:f")
    qk = backend.queue("default")
    reply = backend.scripts.lease(qk, 2, "w", "r1")
    tokens = {job_id: text.split("\x1f")[4] for job_id, text in reply.jobs}
    assert backend.set_progress("default", old.id, tokens[old.id], 0.5, "half")
    assert not backend.set_progress("default", old.id, "999", 0.9, "not mine")
    assert backend.scripts.progress(qk, "nope", "1", "{}", 1000) is ProgressCode.GONE
    # The old job finishes; writes of the other job sweep its entry.
    backend.scripts.complete(qk, [(old.id, tokens[old.id], "1")])
    for _ in range(50):
        assert backend.set_progress("default", new.id, tokens[new.id], 0.1, "")
        if backend.progress("default", old.id) is None:
            break
    assert backend.progress("default", old.id) is None
    assert app.redis.pttl(qk.progress) > 0  # and the hash expires when idle


def test_progress_validates_its_value() -> None:
    ctx = JobContext("j", "t", "q", 1, 3, {}, 0.0, 0.0, 0.0)
    got: list[tuple[float | None, str]] = []
    with job_context(ctx, lambda v, m: got.append((v, m))):
        for bad in (-0.1, 1.5, float("nan"), True):
            with pytest.raises(ValidationError):
                set_progress(bad)
        set_progress(None, "x" * 1000)
    assert got == [(None, "x" * 200)]
