"""redis-py retries a command after a timeout (10 times by default in redis-py 8).

If the reply of a script call is lost after Redis ran it, the retry runs the
script a second time (the same holds for the scheduler's own lean call path,
scheduler.backend.caller, which re-sends once after a connection error or timeout).
These tests lose exactly one reply per call (the script ran, the client saw
a timeout) with redis-py's default retry policy on, and check that no script
has a double effect.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

from scheduler import JobState, Scheduler
from scheduler.backend.codes import CompleteCode, FailCode, HeartbeatCode, ReleaseCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import JobOptions, parse_record
from scheduler.backend.scripts import EnqueueItem, Scripts
from scheduler.devserver import DevServer
from scheduler.priority import format_seq


class LosesOneReply(Connection):
    """Reads the server's reply to the next EVALSHA, then pretends it timed out."""

    armed: dict[str, bool] = {"on": False}
    lost: list[str] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        chunks = command if isinstance(command, list) else [command]
        data = b"".join(c if isinstance(c, bytes) else bytes(c) for c in chunks)
        tag = "EVALSHA" if b"EVALSHA" in data.upper() else "other"
        super().send_packed_command(command, check_health)  # may connect (handshake) first
        self._last = tag

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().read_response(*args, **kwargs)
        if self.armed["on"] and str(getattr(self, "_last", "")).upper() == "EVALSHA":
            self.armed["on"] = False
            self.lost.append("EVALSHA")
            raise redis.TimeoutError("simulated: reply lost after the script ran")
        return response


@pytest.fixture
def flaky(redis_server: DevServer, real_redis: redis.Redis) -> Iterator[Scheduler]:
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)  # default retry policy
    client.connection_pool.connection_class = LosesOneReply
    conn = client.connection_pool.get_connection()
    assert isinstance(conn, LosesOneReply) and conn.retry.get_retries() >= 1
    client.connection_pool.release(conn)
    LosesOneReply.lost.clear()
    yield Scheduler(client, prefix="i")
    client.close()


def lose_next_reply() -> None:
    LosesOneReply.armed["on"] = True


def test_enqueue_retried_creates_one_job(flaky: Scheduler) -> None:
    lose_next_reply()
    job = flaky.enqueue("m:f", job_id="once")
    assert LosesOneReply.lost == ["EVALSHA"]
    qk = flaky.queue_keys("default")
    assert flaky.redis.hlen(qk.jobs) == 1 and flaky.redis.zcard(qk.ready) == 1
    assert job.info().record.seq == format_seq(1)  # the sequence advanced once
    assert int(flaky.redis.hget(qk.stats, "enqueued") or 0) == 1


def test_bulk_enqueue_retried_creates_each_job_once(flaky: Scheduler) -> None:
    from scheduler.task import JobSpec

    lose_next_reply()
    flaky.enqueue_many([JobSpec("m:f", (i,)) for i in range(50)])
    assert LosesOneReply.lost == ["EVALSHA"]
    assert flaky.redis.zcard(flaky.queue_keys("default").ready) == 50


def test_lease_retried_returns_the_same_jobs(flaky: Scheduler) -> None:
    qk = flaky.queue_keys("default")
    for i in range(4):
        flaky.enqueue("m:f", job_id=f"j{i}")
    lose_next_reply()
    reply = flaky.scripts.lease(qk, 2, "w1", "req-1")
    assert LosesOneReply.lost == ["EVALSHA"]
    assert [j for j, _ in reply.jobs] == ["j0", "j1"]
    assert flaky.redis.zcard(qk.leased) == 2 and flaky.redis.zcard(qk.ready) == 2
    assert all(parse_record(j, t).attempts == 1 for j, t in reply.jobs)


def test_complete_fail_release_retried_apply_once(flaky: Scheduler) -> None:
    qk = flaky.queue_keys("default")
    for i in range(3):
        flaky.enqueue("m:f", job_id=f"j{i}", max_attempts=3)
    recs = [parse_record(j, t) for j, t in flaky.scripts.lease(qk, 3, "w", "r").jobs]
    lose_next_reply()
    assert flaky.scripts.complete(qk, [("j0", recs[0].token, "1")]) == [2]  # 2: already done
    lose_next_reply()
    assert flaky.scripts.fail(qk, [("j1", recs[1].token, "{}", 60_000)]) == [3]
    lose_next_reply()
    assert flaky.scripts.release(qk, [("j2", recs[2].token)]) == [2]
    assert LosesOneReply.lost == ["EVALSHA"] * 3
    stats = {
        k.decode(): int(v)
        for k, v in flaky.redis.hgetall(qk.stats).items()
        if not k.startswith((b"r:", b"rsec"))
    }
    assert stats["succeeded"] == 1 and stats["failed"] == 1 and stats["retried"] == 1
    assert flaky.job("j1").info().attempts == 1 and flaky.job("j1").status is JobState.FAILED
    assert flaky.job("j2").info().attempts == 0  # released once: the attempt came back once


def test_cancel_and_manual_retry_retried_apply_once(flaky: Scheduler) -> None:
    job = flaky.enqueue("m:f")
    lose_next_reply()
    assert job.cancel() is False  # the retry saw it already cancelled
    assert job.status is JobState.CANCELLED
    lose_next_reply()
    assert job.retry() is False  # the retry saw it already back in ready
    assert job.status is JobState.READY
    assert flaky.redis.zcard(flaky.queue_keys("default").ready) == 1


# A repeated call answers with the outcome it already applied -- also once the
# job moved on -- and a late call from a lease that ended without its holder
# is told the lease is lost. On fakeredis and on a real server.

SHORT = JobOptions(max_attempts=2, lease_ms=1, result_ttl_ms=60_000, dead_ttl_ms=-1)
ONE_SHOT = JobOptions(max_attempts=1, lease_ms=1, result_ttl_ms=60_000, dead_ttl_ms=-1)


def lease_token(s: Scripts, qk: QueueKeys, job_id: str, options: JobOptions) -> str:
    s.enqueue(qk, [EnqueueItem(job_id, "m:f", "[[],{}]", "1.0", "", options.encode())])
    ((leased, text),) = s.lease(qk, 1, "w1", f"req-{job_id}").jobs
    assert leased == job_id
    return parse_record(job_id, text).token


def maintain(s: Scripts, qk: QueueKeys) -> None:
    """A lease call that takes nothing: promotes due jobs, reaps expired leases."""
    time.sleep(0.01)
    s.lease(qk, 0, "other", f"maint-{time.monotonic_ns()}")


def test_repeated_fail_after_promotion_says_already_applied(client: redis.Redis) -> None:
    s, qk = Scripts(client), QueueKeys("i", "again")
    token = lease_token(s, qk, "a", SHORT)
    assert s.fail(qk, [("a", token, "{}", 0)]) == [FailCode.RETRY_SCHEDULED]
    maintain(s, qk)  # its retry ETA passed: promoted to ready
    assert parse_record("a", client.hget(qk.jobs, "a")).state is JobState.READY  # type: ignore[arg-type]
    assert s.fail(qk, [("a", token, "{}", 0)]) == [FailCode.ALREADY_RETRY_SCHEDULED]
    assert s.heartbeat(qk, [("a", token)]) == [HeartbeatCode.REPORTED]
    assert client.zcard(qk.ready) == 1 and client.zcard(qk.delayed) == 0  # nothing moved


def test_repeated_fail_that_went_dead_says_already_dead(client: redis.Redis) -> None:
    s, qk = Scripts(client), QueueKeys("i", "again")
    token = lease_token(s, qk, "d", SHORT)
    assert s.fail(qk, [("d", token, "{}", -1)]) == [FailCode.DEAD]
    assert s.fail(qk, [("d", token, "{}", -1)]) == [FailCode.ALREADY_DEAD]
    assert int(client.hget(qk.stats, "dead") or 0) == 1


def test_release_after_the_lease_was_reaped_is_stale(client: redis.Redis) -> None:
    s, qk = Scripts(client), QueueKeys("i", "again")
    token = lease_token(s, qk, "r", SHORT)
    s.start(qk, [("r", token)])
    maintain(s, qk)  # the started lease expired: requeued with its attempt counted
    assert s.release(qk, [("r", token)]) == [ReleaseCode.STALE]
    rec = parse_record("r", client.hget(qk.jobs, "r"))  # type: ignore[arg-type]
    assert rec.state is JobState.READY and rec.attempts == 1  # the attempt was not given back
    assert s.complete(qk, [("r", token, "1")]) == [CompleteCode.STALE]
    assert s.heartbeat(qk, [("r", token)]) == [HeartbeatCode.LOST]


def test_heartbeat_after_the_lease_expired_into_dead_says_lost(client: redis.Redis) -> None:
    s, qk = Scripts(client), QueueKeys("i", "again")
    token = lease_token(s, qk, "x", ONE_SHOT)
    s.start(qk, [("x", token)])
    maintain(s, qk)  # expired at its last (started) attempt: dead
    assert parse_record("x", client.hget(qk.jobs, "x")).state is JobState.DEAD  # type: ignore[arg-type]
    assert s.heartbeat(qk, [("x", token)]) == [HeartbeatCode.LOST]
    assert s.fail(qk, [("x", token, "{}", -1)]) == [FailCode.STALE]
    assert s.release(qk, [("x", token)]) == [ReleaseCode.STALE]


def test_repeated_release_still_says_already_released(client: redis.Redis) -> None:
    s, qk = Scripts(client), QueueKeys("i", "again")
    token = lease_token(s, qk, "k", SHORT)
    assert s.release(qk, [("k", token)]) == [ReleaseCode.RELEASED]
    assert s.release(qk, [("k", token)]) == [ReleaseCode.ALREADY_RELEASED]
    maintain(s, qk)  # a released job is not leased: nothing to reap
    assert s.release(qk, [("k", token)]) == [ReleaseCode.ALREADY_RELEASED]


def test_repeated_lease_request_returns_only_its_own_leases(flaky: Scheduler) -> None:
    """Issue 9 item 2: lease with r1 (reply lost), let the lease expire, lease
    again as the same worker with r2, then repeat r1: the repeat returns
    nothing (r1's lease is gone), never r2's lease."""
    qk = flaky.queue_keys("default")
    flaky.enqueue("m:f", job_id="a", lease=0.001)
    lose_next_reply()  # r1 runs, its reply is lost; redis-py re-sends it
    (first,) = flaky.scripts.lease(qk, 1, "w1", "r1").jobs
    assert LosesOneReply.lost == ["EVALSHA"]
    time.sleep(0.01)  # the 1 ms lease expires (never started: no attempt kept)
    (second,) = flaky.scripts.lease(qk, 1, "w1", "r2").jobs
    assert second[0] == "a" and parse_record(*second).token != parse_record(*first).token
    repeat = flaky.scripts.lease(qk, 1, "w1", "r1")
    assert repeat.jobs == []  # not r2's lease: the worker must not hold it twice
    assert flaky.scripts.lease(qk, 1, "w1", "r2").jobs == [second]  # r2's own repeat
