"""Every Lua script, on fakeredis and on a real Redis server (``client`` fixture)."""

from __future__ import annotations

import functools
import json

import pytest
import redis

from scheduler.backend.codes import StartCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.lualoader import script_header
from scheduler.backend.record import JobOptions, JobState, parse_record
from scheduler.backend.scripts import SCRIPT_NAMES, Scripts, load_script_text
from tests.helpers import enqueue_item, wait_until

OPTS = JobOptions(max_attempts=2, lease_ms=60_000, result_ttl_ms=3_600_000, dead_ttl_ms=-1)

#: A raw enqueue item with two attempts (``options=`` overrides them).
item = functools.partial(enqueue_item, options=OPTS.encode())


@pytest.fixture
def s(client: redis.Redis) -> Scripts:
    return Scripts(client)


@pytest.fixture
def qk() -> QueueKeys:
    return QueueKeys("t", "q")


def state(client: redis.Redis, qk: QueueKeys, job_id: str) -> JobState:
    return parse_record(job_id, client.hget(qk.jobs, job_id)).state  # type: ignore[arg-type]


def lease_ids(s: Scripts, qk: QueueKeys, n: int, req: str, worker: str = "w1") -> list[str]:
    return [job_id for job_id, _ in s.lease(qk, n, worker, req).jobs]


def test_every_script_has_a_header_naming_keys_argv_returns_errors_and_events() -> None:
    for name in SCRIPT_NAMES:
        head = script_header(name)
        assert head.startswith(f"-- {name}.lua -- "), name
        assert load_script_text(name).startswith(head), name
        for part in ("KEYS[", "ARGV[", "\n-- Returns: ", "\n-- Errors: ", "\n-- Events: "):
            assert part in head, (name, part)


def test_enqueue_creates_then_is_idempotent(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    assert s.enqueue(qk, [item("a"), item("b")]) == [True, True]
    assert s.enqueue(qk, [item("a", priority=99.0)]) == [False]
    assert client.zcard(qk.ready) == 2
    rec = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert rec.priority == 1.0  # the second enqueue changed nothing
    assert rec.state is JobState.READY
    assert int(client.hget(qk.stats, "enqueued") or 0) == 2


def test_enqueue_rejects_bad_argument_count(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    script = client.register_script(load_script_text("enqueue"))
    with pytest.raises(redis.ResponseError, match="bad argument count"):
        script(keys=qk.standard(), args=[0, 2, "only-one-field"])
    assert s.enqueue(qk, [item("m", meta='{"k":1}')]) == [True]
    assert parse_record("m", client.hget(qk.jobs, "m")).meta == '{"k":1}'  # type: ignore[arg-type]
    assert client.hlen(qk.jobs) == 1


def test_delay_and_eta(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    now_ms = int(client.time()[0]) * 1000
    s.enqueue(
        qk,
        [
            item("d", delay_ms=60_000),
            item("e", eta_ms=now_ms + 120_000),
            item("past", eta_ms=now_ms - 5_000),
        ],
    )
    assert state(client, qk, "d") is JobState.DELAYED
    assert state(client, qk, "e") is JobState.DELAYED
    assert state(client, qk, "past") is JobState.READY
    assert client.zscore(qk.delayed, client.zrange(qk.delayed, 1, 1)[0]) == now_ms + 120_000
    reply = s.lease(qk, 10, "w", "r1")
    assert [j for j, _ in reply.jobs] == ["past"]
    assert 55_000 < reply.wake_ms <= 60_000  # the delayed job is the next thing due


def test_lease_order_priority_then_fifo(s: Scripts, qk: QueueKeys) -> None:
    s.enqueue(qk, [item("low", 1.0), item("hi1", 5.0), item("mid", 3.0), item("hi2", 5.0)])
    assert lease_ids(s, qk, 10, "r") == ["hi1", "hi2", "mid", "low"]


def test_lease_stamps_attempt_token_worker_and_deadline(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a"), item("b")])
    reply = s.lease(qk, 2, "w9", "r")
    recs = [parse_record(j, t) for j, t in reply.jobs]
    assert all(r.state is JobState.LEASED and r.attempts == 1 and r.worker == "w9" for r in recs)
    assert recs[0].token != recs[1].token  # fresh fencing token per lease
    assert int(recs[1].token) > int(recs[0].token)  # monotonic
    now_ms = int(client.time()[0]) * 1000
    deadline = client.zscore(qk.leased, "a")
    assert deadline is not None and now_ms + 58_000 < deadline <= now_ms + 61_000


def test_lease_same_request_is_idempotent(s: Scripts, qk: QueueKeys) -> None:
    s.enqueue(qk, [item("a"), item("b"), item("c")])
    first = lease_ids(s, qk, 2, "req-1")
    again = lease_ids(s, qk, 2, "req-1")
    assert first == again == ["a", "b"]
    assert lease_ids(s, qk, 2, "req-2") == ["c"]


def test_heartbeat_extends_and_refuses_stale(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a", options="2,200,1000,-1")])
    rec = parse_record(*s.lease(qk, 1, "w", "r").jobs[0])
    before = client.zscore(qk.leased, "a")
    codes = s.heartbeat(qk, [("a", rec.token), ("a", "999"), ("nope", "1")])
    assert codes[0] >= (before or 0)
    assert codes[1:] == [0, -1]
    assert client.zscore(qk.leased, "a") == codes[0]
    s.complete(qk, [("a", rec.token, "1")])
    assert s.heartbeat(qk, [("a", rec.token)]) == [1]  # reported, not lost


def test_complete_records_result_and_refuses_stale(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a"), item("b")])
    recs = [parse_record(j, t) for j, t in s.lease(qk, 2, "w", "r").jobs]
    codes = s.complete(qk, [("a", recs[0].token, '{"x":1}'), ("b", "bogus", "1"), ("zz", "1", "1")])
    assert codes == [1, 0, -1]
    assert s.complete(qk, [("a", recs[0].token, '{"x":1}')]) == [2]  # repeat: no double effect
    done = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert done.state is JobState.SUCCEEDED and json.loads(done.outcome) == {"x": 1}
    assert client.zscore(qk.leased, "a") is None
    assert client.zscore(qk.done, "a") is not None
    assert state(client, qk, "b") is JobState.LEASED
    assert int(client.hget(qk.stats, "succeeded") or 0) == 1


def test_fail_retries_then_dead(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    s.enqueue(qk, [item("a")])  # max_attempts = 2
    rec = parse_record(*s.lease(qk, 1, "w", "r1").jobs[0])
    assert s.fail(qk, [("a", rec.token, '{"error":"e1"}', 0)]) == [1]
    assert s.fail(qk, [("a", rec.token, '{"error":"e1"}', 0)]) == [3]  # repeat
    assert state(client, qk, "a") is JobState.FAILED
    rec2 = parse_record(*s.lease(qk, 1, "w", "r2").jobs[0])  # promoted (delay 0) and leased
    assert rec2.attempts == 2 and rec2.token != rec.token
    assert s.fail(qk, [("a", rec.token, "{}", 0)]) == [0]  # old token is stale
    assert s.fail(qk, [("a", rec2.token, '{"error":"e2"}', 0)]) == [2]
    dead = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert dead.state is JobState.DEAD and json.loads(dead.outcome) == {"error": "e2"}
    assert client.zscore(qk.dead, "a") == float("inf")  # dead_ttl -1: kept


def test_fail_without_retry_goes_dead_at_once(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a")])
    rec = parse_record(*s.lease(qk, 1, "w", "r").jobs[0])
    assert s.fail(qk, [("a", rec.token, '{"error":"bad payload"}', -1)]) == [2]
    assert state(client, qk, "a") is JobState.DEAD


def test_retry_delay_goes_through_delayed_set(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a")])
    rec = parse_record(*s.lease(qk, 1, "w", "r").jobs[0])
    s.fail(qk, [("a", rec.token, "{}", 30_000)])
    assert client.zcard(qk.delayed) == 1
    assert lease_ids(s, qk, 1, "r2") == []


def test_release_returns_job_without_losing_attempt(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a", 1.0), item("b", 1.0)])
    recs = [parse_record(j, t) for j, t in s.lease(qk, 1, "w", "r").jobs]
    assert s.release(qk, [("a", recs[0].token)]) == [1]
    assert s.release(qk, [("a", recs[0].token)]) == [2]
    rec = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert rec.state is JobState.READY and rec.attempts == 0
    assert lease_ids(s, qk, 2, "r2") == ["a", "b"]  # kept its place ahead of b


def test_expired_lease_is_requeued_then_dead(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a", options="2,30,1000,-1")])  # lease 30 ms, 2 attempts
    first = parse_record(*s.lease(qk, 1, "w1", "r1").jobs[0])
    assert s.start(qk, [("a", first.token)]) == [StartCode.STARTED]
    wait_until(lambda: lease_ids(s, qk, 1, f"p{id(object())}", "w2") == ["a"])
    second = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert second.attempts == 2 and second.worker == "w2" and second.started_ms is None
    assert "LeaseExpired" in second.outcome
    assert s.complete(qk, [("a", first.token, "1")]) == [0]  # the late worker is refused
    assert s.start(qk, [("a", second.token)]) == [StartCode.STARTED]
    assert s.start(qk, [("a", second.token)]) == [StartCode.ALREADY_STARTED]
    assert s.start(qk, [("a", first.token), ("zz", "1")]) == [StartCode.STALE, StartCode.GONE]
    wait_until(
        lambda: (
            (s.lease(qk, 0, "w3", f"m{id(object())}"), state(client, qk, "a"))[1] is JobState.DEAD
        )
    )
    assert (
        "lease expired" in json.loads(parse_record("a", client.hget(qk.jobs, "a")).outcome)["error"]
    )  # type: ignore[arg-type]


def test_unstarted_lease_expires_without_charging_an_attempt(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    """Issue 9 item 4: an attempt counts an execution that started."""
    s.enqueue(qk, [item("a", options="1,30,1000,-1")])  # lease 30 ms, ONE attempt
    first = parse_record(*s.lease(qk, 1, "w1", "r1").jobs[0])
    assert first.attempts == 1 and first.started_ms is None
    # Never started (buffered, or its worker froze): expiry gives the attempt back.
    wait_until(lambda: lease_ids(s, qk, 1, f"p{id(object())}", "w2") == ["a"])
    second = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert second.state is JobState.LEASED and second.attempts == 1
    assert second.outcome == ""  # nothing ran, so no failure was recorded
    assert s.start(qk, [("a", second.token)]) == [StartCode.STARTED]
    started = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert started.started_ms is not None and started.started_ms >= started.enqueued_ms
    # Started at its only attempt, then expired: dead.
    wait_until(
        lambda: (
            (s.lease(qk, 0, "w3", f"m{id(object())}"), state(client, qk, "a"))[1] is JobState.DEAD
        )
    )


def test_cancel(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    s.enqueue(qk, [item("r"), item("d", delay_ms=60_000), item("l")])
    leased = parse_record(*s.lease(qk, 1, "w", "x").jobs[0])
    assert leased.job_id == "r"
    for job_id in ("r", "d", "l"):
        assert s.cancel(qk, job_id, '{"error":"stop"}') == 1
        assert state(client, qk, job_id) is JobState.CANCELLED
    assert s.cancel(qk, "r", "{}") == 0
    assert s.cancel(qk, "nope", "{}") == -1
    assert client.zcard(qk.ready) == client.zcard(qk.delayed) == client.zcard(qk.leased) == 0
    assert s.complete(qk, [("r", leased.token, "1")]) == [0]  # the worker is refused


def test_retry_dead_and_cancelled(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    s.enqueue(qk, [item("a"), item("b")])
    rec = parse_record(*s.lease(qk, 1, "w", "r").jobs[0])
    s.fail(qk, [("a", rec.token, "{}", -1)])
    s.cancel(qk, "b", "{}")
    assert s.retry(qk, ["a", "b", "zz"]) == [1, 1, -1]
    assert s.retry(qk, ["a"]) == [0]  # ready now: not retryable
    again = parse_record("a", client.hget(qk.jobs, "a"))  # type: ignore[arg-type]
    assert again.state is JobState.READY and again.attempts == 0
    assert client.zcard(qk.dead) == 0 and client.zcard(qk.done) == 0
    assert lease_ids(s, qk, 5, "r2") == ["a", "b"]


def test_reprioritize(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    s.enqueue(qk, [item("a", 1.0), item("b", 2.0), item("d", 1.0, delay_ms=60_000)])
    assert s.reprioritize(qk, "a", "3.0", "") == 1
    assert s.reprioritize(qk, "d", "9.0", "") == 1
    assert parse_record("d", client.hget(qk.jobs, "d")).priority == 9.0  # type: ignore[arg-type]
    assert s.reprioritize(qk, "zz", "1.0", "") == -1
    assert lease_ids(s, qk, 1, "r") == ["a"]
    assert s.reprioritize(qk, "a", "1.0", "") == 0  # leased: refused


def test_run_now(s: Scripts, qk: QueueKeys) -> None:
    s.enqueue(qk, [item("d", delay_ms=3_600_000), item("r")])
    assert s.run_now(qk, "r") == 0
    assert s.run_now(qk, "d") == 1
    assert s.run_now(qk, "zz") == -1
    assert sorted(lease_ids(s, qk, 5, "x")) == ["d", "r"]


def test_pause_resume_and_aging_config(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    s.enqueue(qk, [item("a")])
    assert s.queue_config(qk, "paused", "1") == "0"
    reply = s.lease(qk, 1, "w", "r1")
    assert reply.paused and reply.jobs == []
    client.delete(qk.wake)
    assert s.queue_config(qk, "paused", "0") == "1"
    assert client.llen(qk.wake) == 1  # resume wakes an idle worker
    assert lease_ids(s, qk, 1, "r2") == ["a"]
    assert s.queue_config(qk, "aging", "0.5") == "0"
    with pytest.raises(redis.ResponseError, match="bad value"):
        s.queue_config(qk, "aging", "-1")
    with pytest.raises(redis.ResponseError, match="unknown setting"):
        s.queue_config(qk, "colour", "red")


def test_purge_is_bounded_and_complete(s: Scripts, qk: QueueKeys, client: redis.Redis) -> None:
    s.enqueue(qk, [item(f"j{i}") for i in range(25)] + [item("d", delay_ms=60_000)])
    assert s.purge(qk, "ready", 10) == 10
    assert s.purge(qk, "ready", 10) == 10
    assert s.purge(qk, "ready", 10) == 5
    assert s.purge(qk, "ready", 10) == 0
    assert client.hlen(qk.jobs) == 1 and client.zcard(qk.delayed) == 1
    with pytest.raises(redis.ResponseError):
        s.purge(qk, "everything", 10)


def test_finished_records_expire_in_bounded_batches(client: redis.Redis, qk: QueueKeys) -> None:
    s = Scripts(client, expire_batch=3)
    s.enqueue(qk, [item(f"j{i}", options="1,60000,0,0") for i in range(7)])  # ttl 0
    leased = [parse_record(j, t) for j, t in s.lease(qk, 7, "w", "r").jobs]
    s.complete(qk, [(r.job_id, r.token, "1") for r in leased[:5]])
    s.fail(qk, [(r.job_id, r.token, "{}", -1) for r in leased[5:]])
    # complete's own expiry pass deletes up to max(batch, 2 * its jobs): all 5.
    assert client.zcard(qk.done) == 0 and client.zcard(qk.dead) == 2
    s.lease(qk, 0, "w", "r2")  # maintenance: the 2 dead (batch 3)
    assert client.zcard(qk.done) == 0 and client.zcard(qk.dead) == 0
    assert client.hlen(qk.jobs) == 0


def test_events_stream_is_bounded_and_batched(client: redis.Redis, qk: QueueKeys) -> None:
    s = Scripts(client, events_maxlen=50)
    s.enqueue(qk, [item(f"b{i}") for i in range(100)])
    entry = client.xrange(qk.events, "-", "+")[-1][1]
    assert entry[b"e"] == b"enqueued"  # one entry per call and event kind
    assert entry[b"j"].decode().split(",") == [f"b{i}" for i in range(100)]
    for i in range(500):
        s.enqueue(qk, [item(f"j{i}")])
    length = client.xlen(qk.events)
    assert 50 <= length < 200  # approximate trimming ("~") keeps it near the cap
    assert Scripts(client, events_maxlen=0).enqueue(qk, [item("quiet")]) == [True]
    assert client.xlen(qk.events) == length  # events off: nothing added


def test_promotion_is_bounded_per_call(client: redis.Redis, qk: QueueKeys) -> None:
    s = Scripts(client, promote_batch=5)
    s.enqueue(qk, [item(f"x{i}", delay_ms=1) for i in range(12)])
    t = client.time()
    now_ms = int(t[0]) * 1000 + int(t[1]) // 1000
    wait_until(lambda: int(client.time()[0]) * 1000 + int(client.time()[1]) // 1000 > now_ms + 2)
    first = s.lease(qk, 0, "w", "a")
    assert first.wake_ms == 0  # more is already due
    assert client.zcard(qk.ready) == 5
    s.lease(qk, 0, "w", "b")
    s.lease(qk, 0, "w", "c")
    assert client.zcard(qk.ready) == 12 and client.zcard(qk.delayed) == 0


def test_an_idle_lease_drops_a_stale_wake_marker_only_when_nothing_is_pending(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a")])
    client.delete(qk.wake)
    rec = parse_record(*s.lease(qk, 5, "w", "r1").jobs[0])
    # The first lease of a quiet queue brings its lease deadline forward: a
    # marker for an idle worker, kept while that lease is held.
    assert client.llen(qk.wake) == 1
    assert s.lease(qk, 5, "w", "r2").jobs == []
    assert client.llen(qk.wake) == 1
    # Finished: nothing ready, delayed or leased; the marker would only make
    # the next waiting worker (here the same one) look again for nothing.
    s.complete(qk, [("a", rec.token, "1")])
    assert s.lease(qk, 5, "w", "r3").jobs == []
    assert client.llen(qk.wake) == 0
    # A delayed job is pending: the marker its enqueue pushed stays.
    s.enqueue(qk, [item("d", delay_ms=60_000)])
    assert s.lease(qk, 5, "w", "r4").jobs == []
    assert client.llen(qk.wake) == 1
