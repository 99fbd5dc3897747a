"""Damaged job records on a real Redis server: every script checks what it
reads before writing, a damaged record goes dead with its reason (counted),
and no good job is lost or stopped (issue 11, item 3)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from scheduler import JobState, Scheduler
from scheduler.admin import overview, queue_status
from scheduler.backend.codes import (
    CancelCode,
    CompleteCode,
    FailCode,
    HeartbeatCode,
    ReleaseCode,
    ReprioritizeCode,
    RetryCode,
    RunNowCode,
    StartCode,
)
from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import (
    FIELD_COUNT,
    I_ATTEMPTS,
    I_OPTIONS,
    I_PRIORITY,
    I_STATE,
    I_VERSION,
    SEP,
    parse_record,
)
from scheduler.backend.scripts import Scripts
from scheduler.cli.status import render_overview
from scheduler.errors import DamagedRecordError
from scheduler.worker.book import JobBook
from tests.helpers import enqueue_item as item
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
OPTS = "3,60000,3600000,-1"


@pytest.fixture
def s(real_redis: redis.Redis) -> Scripts:
    return Scripts(real_redis)


@pytest.fixture
def qk() -> QueueKeys:
    return QueueKeys("t", "q")


def set_field(client: redis.Redis, qk: QueueKeys, job_id: str, index: int, value: str) -> None:
    raw = client.hget(qk.jobs, job_id)
    assert isinstance(raw, bytes)
    f = raw.decode().split(SEP, FIELD_COUNT - 1)
    f[index] = value
    client.hset(qk.jobs, job_id, SEP.join(f))


def drop_a_field(client: redis.Redis, qk: QueueKeys, job_id: str) -> None:
    raw = client.hget(qk.jobs, job_id)
    assert isinstance(raw, bytes)
    f = raw.decode().split(SEP, FIELD_COUNT - 1)
    del f[I_OPTIONS]
    client.hset(qk.jobs, job_id, SEP.join(f))


def bad_utf8(client: redis.Redis, qk: QueueKeys, job_id: str) -> None:
    raw = client.hget(qk.jobs, job_id)
    assert isinstance(raw, bytes)
    client.hset(qk.jobs, job_id, raw[:-2] + b"\xff\xfe")


def assert_dead_with(client: redis.Redis, qk: QueueKeys, job_id: str, reason: str) -> None:
    rec = parse_record(job_id, client.hget(qk.jobs, job_id))  # type: ignore[arg-type]
    assert rec.state is JobState.DEAD
    assert rec.token == "" and rec.worker == ""
    error = json.loads(rec.outcome)
    assert error["type"] == "DamagedRecord"
    assert error["error"] == f"damaged record: {reason}"
    assert error["record"]  # the original text is kept
    assert client.zscore(qk.dead, job_id) is not None
    for key in (qk.leased, qk.done):
        assert client.zscore(key, job_id) is None
    assert not any(m.endswith(b":" + job_id.encode()) for m in client.zrange(qk.ready, 0, -1))
    assert not any(m.endswith(b":" + job_id.encode()) for m in client.zrange(qk.delayed, 0, -1))
    assert client.hget(qk.stats, "damaged") is not None


DAMAGES: dict[str, tuple[Callable[[redis.Redis, QueueKeys, str], None], str]] = {
    "priority": (
        lambda c, q, j: set_field(c, q, j, I_PRIORITY, "abc"),
        "priority is not a finite number",
    ),
    "attempts": (
        lambda c, q, j: set_field(c, q, j, I_ATTEMPTS, "1x"),
        "attempts is not an integer",
    ),
    "options": (
        lambda c, q, j: set_field(c, q, j, I_OPTIONS, "3,abc,1,1"),
        "options is not four integers (max_attempts >= 1, lease_ms >= 1), "
        "optionally a fifth (timeout_ms >= 1), or empty",
    ),
    "state": (
        lambda c, q, j: set_field(c, q, j, I_STATE, "Q"),
        "state is not a known state letter",
    ),
    "version": (lambda c, q, j: set_field(c, q, j, I_VERSION, "7"), "version is not 2 or 3"),
    "missing field": (drop_a_field, "record has 17 fields, expected 18"),
    "utf-8": (bad_utf8, "record is not valid UTF-8"),
}


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_a_damaged_ready_record_among_30_good_ones_goes_dead_and_all_30_are_leased(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis, kind: str
) -> None:
    good = [f"g{i}" for i in range(30)]
    s.enqueue(qk, [item(j) for j in good[:15]] + [item("bad")] + [item(j) for j in good[15:]])
    damage, reason = DAMAGES[kind]
    damage(real_redis, qk, "bad")
    reply = s.lease(qk, 31, "w1", "r1")
    assert sorted(j for j, _ in reply.jobs) == sorted(good)
    assert_dead_with(real_redis, qk, "bad", reason)
    assert int(real_redis.hget(qk.stats, "damaged") or 0) == 1
    assert real_redis.zcard(qk.ready) == 0


def test_a_damaged_due_delayed_record_does_not_stop_the_queue(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis
) -> None:
    s.enqueue(qk, [item("bad", delay_ms=1), item("later", delay_ms=1)])
    set_field(real_redis, qk, "bad", I_PRIORITY, "not-a-number")
    time.sleep(0.01)  # both ETAs pass (1 ms)
    s.enqueue(qk, [item(f"g{i}") for i in range(5)])
    leased = [j for j, _ in s.lease(qk, 10, "w1", "r1").jobs]
    assert sorted(leased) == sorted(["later", *(f"g{i}" for i in range(5))])
    assert_dead_with(real_redis, qk, "bad", "priority is not a finite number")


def test_a_damaged_expired_lease_does_not_stop_the_queue(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis
) -> None:
    s.enqueue(qk, [item("bad", options="3,1,3600000,-1")])  # 1 ms lease
    assert [j for j, _ in s.lease(qk, 1, "w1", "r1").jobs] == ["bad"]
    set_field(real_redis, qk, "bad", I_ATTEMPTS, "one")
    s.enqueue(qk, [item(f"g{i}") for i in range(5)])
    wait_until(lambda: real_redis.zrangebyscore(qk.leased, "-inf", int(time.time() * 1000)))
    leased = [j for j, _ in s.lease(qk, 10, "w1", "r2").jobs]
    assert sorted(leased) == [f"g{i}" for i in range(5)]
    assert_dead_with(real_redis, qk, "bad", "attempts is not an integer")


@pytest.mark.parametrize("seq", ["abc", "1.5", "", "99999999999999999999"])
def test_a_damaged_queue_sequence_is_repaired_and_no_job_is_lost(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis, seq: str
) -> None:
    s.enqueue(qk, [item(f"g{i}") for i in range(30)])
    real_redis.hset(qk.meta, "seq", seq)
    reply = s.lease(qk, 30, "w1", "r1")
    assert len(reply.jobs) == 30
    tokens = {parse_record(j, t).token for j, t in reply.jobs}
    assert len(tokens) == 30
    assert int(real_redis.hget(qk.meta, "seq") or 0) < 2**53
    assert int(real_redis.hget(qk.stats, "damaged") or 0) == 1
    assert s.enqueue(qk, [item("after")]) == [True]  # the queue goes on
    assert [j for j, _ in s.lease(qk, 1, "w1", "r2").jobs] == ["after"]


def test_scripts_that_hold_a_lease_answer_lost_for_a_damaged_record(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis
) -> None:
    s.enqueue(qk, [item(f"j{i}") for i in range(5)])
    tokens = {j: parse_record(j, t).token for j, t in s.lease(qk, 5, "w1", "r1").jobs}
    for j in tokens:
        set_field(real_redis, qk, j, I_PRIORITY, "x")
    assert s.heartbeat(qk, [("j0", tokens["j0"])]) == [HeartbeatCode.LOST]
    done = s.complete(qk, [("j1", tokens["j1"], "1"), ("j2", tokens["j2"], "1")])
    assert done == [CompleteCode.STALE, CompleteCode.STALE]
    assert s.fail(qk, [("j3", tokens["j3"], "{}", 1000)]) == [FailCode.STALE]
    assert s.release(qk, [("j4", tokens["j4"])]) == [ReleaseCode.STALE]
    for j in tokens:
        assert_dead_with(real_redis, qk, j, "priority is not a finite number")
    assert int(real_redis.hget(qk.stats, "damaged") or 0) == 5


def test_start_moves_a_damaged_record_to_dead_like_every_other_script(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis
) -> None:
    # start.lua once treated a damaged record as gone and left it in place
    # (leased, its lease counting down); it goes dead with its reason now.
    s.enqueue(qk, [item("a"), item("b")])
    tokens = {j: parse_record(j, t).token for j, t in s.lease(qk, 2, "w1", "r1").jobs}
    set_field(real_redis, qk, "a", I_PRIORITY, "x")
    codes = s.start(qk, [("a", tokens["a"]), ("b", tokens["b"])])
    assert codes == [StartCode.STALE, StartCode.STARTED]
    assert_dead_with(real_redis, qk, "a", "priority is not a finite number")
    assert int(real_redis.hget(qk.stats, "damaged") or 0) == 1
    assert parse_record("b", real_redis.hget(qk.jobs, "b")).started_ms  # type: ignore[arg-type]
    assert s.start(qk, [("a", tokens["a"])]) == [StartCode.STALE]  # a repeat: still refused


def test_operator_scripts_move_a_damaged_record_to_dead(
    s: Scripts, qk: QueueKeys, real_redis: redis.Redis
) -> None:
    s.enqueue(qk, [item("a"), item("b"), item("c", delay_ms=60_000), item("d")])
    for j in "abcd":
        set_field(real_redis, qk, j, I_OPTIONS, "0,1,1,1")  # max_attempts 0
    reason = (
        "options is not four integers (max_attempts >= 1, lease_ms >= 1), "
        "optionally a fifth (timeout_ms >= 1), or empty"
    )
    assert s.cancel(qk, "a", '"x"') is CancelCode.ALREADY_FINAL
    assert s.reprioritize(qk, "b", "5", "") is ReprioritizeCode.NOT_WAITING
    assert s.run_now(qk, "c") is RunNowCode.NOT_DELAYED
    assert s.retry(qk, ["d"]) == [RetryCode.NOT_RETRYABLE]
    for j in "abcd":
        assert_dead_with(real_redis, qk, j, reason)
    # The dead record is readable; a deliberate retry requeues what was kept.
    assert s.retry(qk, ["d"]) == [RetryCode.REQUEUED]
    assert [j for j, _ in s.lease(qk, 5, "w1", "r1").jobs] == ["d"]


def test_the_worker_book_does_not_crash_on_a_damaged_record() -> None:
    book = JobBook(["q"])
    fields = ["2", "L", "1", "000000001", "7", "w", "1", "", "", "", "abc", "", OPTS, "t", "", ""]
    fields += ["", "[]"]  # aged, payload
    job = book.add("q", "j", SEP.join(fields))
    assert book.buffered == 0 and len(book) == 1
    [(owed, outcome)] = book.take_pending()
    assert owed is job and job.token == "7"
    assert not outcome.ok and not outcome.retryable
    assert json.loads(outcome.text)["error"] == "damaged record: priority is not a finite number"
    job2 = book.add("q", "k", "garbage")
    assert job2.token == "" and len(book.take_pending()) == 1


def test_parse_record_raises_a_typed_error_naming_the_damage() -> None:
    with pytest.raises(DamagedRecordError) as info:
        parse_record("j", "1" + SEP + "Q")
    assert info.value.job_id == "j" and info.value.reason == "record has 2 fields, expected 18"
    assert isinstance(info.value, ValueError)


def test_status_shows_the_damaged_count(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="t")
    qk = QueueKeys("t", "default")
    app.backend.register_queue("default")
    s = Scripts(real_redis)
    s.enqueue(qk, [item("bad"), item("good")])
    set_field(real_redis, qk, "bad", I_STATE, "?")
    s.lease(qk, 2, "w1", "r1")
    [status] = queue_status(app.backend, ["default"])
    assert status.totals["damaged"] == 1 and status.dead == 1
    assert status.to_dict()["totals"]["damaged"] == 1
    from rich.console import Console

    out = Console(width=200, record=True)
    out.print(render_overview(overview(app.backend, ["default"])))
    text = out.export_text()
    assert "damaged" in text
    row = next(line for line in text.splitlines() if line.lstrip("│ ").startswith("default"))
    assert " 1 " in row


# -- with a real worker process ----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["options", "priority"])
def test_a_worker_process_runs_every_good_job_past_a_damaged_one(
    papp: Scheduler, real_redis: redis.Redis, kind: str
) -> None:
    from tests.apps.procapp import whoami

    qk = QueueKeys("p", "default")
    jobs = [whoami.enqueue() for _ in range(15)]
    bad = whoami.enqueue()
    jobs += [whoami.enqueue() for _ in range(15)]
    damage, reason = DAMAGES[kind]
    damage(real_redis, qk, bad.id)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler",
            "worker",
            "tests.apps.procapp:app",
            "--concurrency",
            "4",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=30)
        assert proc.poll() is None  # still serving
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")
    assert_dead_with(real_redis, qk, bad.id, reason)
