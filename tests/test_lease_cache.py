"""The lease reply cache: one hash per queue with per-entry expiry (lua/lib/replies.lua).

Before: one ``P:{Q}:lreq:<R>`` key per lease request for 60 s -- on a Redis
Cluster hundreds of keys per queue slot to migrate. Now a queue's key set is
constant whatever the number of lease requests; expired entries are pruned
by later lease calls and never answered.
"""

from __future__ import annotations

import redis

from scheduler import JobState, Scheduler
from scheduler.backend.keys import (
    EXTENDED_KEY_NAMES,
    LEASE_KEY_NAMES,
    STANDARD_KEY_NAMES,
    QueueKeys,
)
from scheduler.backend.record import parse_record
from tests.helpers import wait_until


def queue_keys(client: redis.Redis, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=f"{prefix}:{{*")}


def test_many_lease_requests_leave_a_constant_key_set(
    real_redis: redis.Redis, real_app: Scheduler
) -> None:
    qk = real_app.queue_keys("default")
    for i in range(50):
        real_app.enqueue("m:f", job_id=f"j{i}")
    for i in range(50):
        assert len(real_app.scripts.lease(qk, 1, "w1", f"r{i}").jobs) == 1
    names = {k.removeprefix(qk.base + ":") for k in queue_keys(real_redis, "t")}
    # Before: 50 "lreq:r<i>" keys besides the queue's own.
    assert len(names - {*STANDARD_KEY_NAMES, *EXTENDED_KEY_NAMES}) <= 2
    assert names <= {*STANDARD_KEY_NAMES, *EXTENDED_KEY_NAMES, *LEASE_KEY_NAMES}
    assert real_redis.hlen(qk.lease_cache) == 50
    assert real_redis.zcard(qk.lease_cache_index) == 50


def test_a_repeat_within_the_lifetime_answers_the_cached_leases(real_app: Scheduler) -> None:
    qk = real_app.queue_keys("default")
    for i in range(3):
        real_app.enqueue("m:f", job_id=f"j{i}")
    first = real_app.scripts.lease(qk, 2, "w1", "r1").jobs
    assert real_app.scripts.lease(qk, 2, "w1", "r1").jobs == first  # nothing more leased
    assert [j for j, _ in real_app.scripts.lease(qk, 2, "w1", "r2").jobs] == ["j2"]


def test_expired_entries_are_not_answered_and_are_pruned(
    real_redis: redis.Redis, real_app: Scheduler
) -> None:
    qk = real_app.queue_keys("default")
    scripts = real_app.scripts
    scripts.lease_cache_ms = 50
    for i in range(4):
        real_app.enqueue("m:f", job_id=f"j{i}")
    (first,) = scripts.lease(qk, 1, "w1", "r1").jobs
    scripts.lease(qk, 1, "w1", "r2")
    assert real_redis.hlen(qk.lease_cache) == 2
    wait_until(lambda: real_redis.zcount(qk.lease_cache_index, "-inf", _now_ms(real_redis)) == 2)
    # r1 expired: a repeat is a new request (leases the next job), and the
    # call pruned the expired entries r1 (before re-adding it) and r2.
    (again,) = scripts.lease(qk, 1, "w1", "r1").jobs
    assert again[0] != first[0]
    assert set(real_redis.hkeys(qk.lease_cache)) == {b"r1"}
    assert real_redis.zrange(qk.lease_cache_index, 0, -1) == [b"r1"]


def test_pruning_is_bounded_per_call(real_redis: redis.Redis, real_app: Scheduler) -> None:
    qk = real_app.queue_keys("default")
    scripts = real_app.scripts
    scripts.expire_batch = 3
    for i in range(8):  # a backlog of 8 entries that expired long ago
        real_redis.hset(qk.lease_cache, f"r{i}", "1,x")
        real_redis.zadd(qk.lease_cache_index, {f"r{i}": i + 1})
    scripts.lease(qk, 0, "w1", "m1")  # leases nothing: prunes 3, caches nothing
    assert real_redis.hlen(qk.lease_cache) == 5
    assert real_redis.zcard(qk.lease_cache_index) == 5


def _wait_past_deadline(client: redis.Redis, qk: QueueKeys, job_id: str) -> None:
    """Until the server's clock passed the lease deadline of ``job_id``
    (nothing reaps it meanwhile: no lease call is made)."""
    deadline = client.zscore(qk.leased, job_id)
    assert deadline is not None
    wait_until(lambda: _now_ms(client) > deadline, interval=0.02)


def test_a_repeat_after_the_deadline_renews_the_lease_it_returns(
    real_redis: redis.Redis, real_app: Scheduler
) -> None:
    """The first reply was lost and the retry comes after the lease deadline
    (not reaped yet): the lease comes back renewed, as a heartbeat renews it,
    so another worker's lease call right after does not requeue it under the
    worker that is about to run it. Before: returned already expired, then
    reaped -- the job ran twice."""
    qk = real_app.queue_keys("default")
    scripts = real_app.scripts
    real_app.enqueue("m:f", job_id="j1", lease=0.2)
    (first,) = scripts.lease(qk, 1, "w1", "r1").jobs
    _wait_past_deadline(real_redis, qk, "j1")
    (again,) = scripts.lease(qk, 1, "w1", "r1").jobs
    assert again == first
    assert real_redis.zscore(qk.leased, "j1") > _now_ms(real_redis)  # type: ignore[operator]
    assert scripts.lease(qk, 1, "w2", "r9").jobs == []  # reaps what expired: not j1
    assert real_app.job("j1").info().state is JobState.LEASED
    token = parse_record("j1", first[1]).token
    assert scripts.heartbeat(qk, [("j1", token)])[0] > 1  # still held by w1


def test_a_repeat_after_the_lease_was_reaped_returns_nothing(
    real_redis: redis.Redis, real_app: Scheduler
) -> None:
    """Reaped before the retry came (never started: the attempt given back),
    the lease is no longer held: the repeat answers nothing, renews nothing
    and leaves the job ready for any worker."""
    qk = real_app.queue_keys("default")
    scripts = real_app.scripts
    real_app.enqueue("m:f", job_id="j1", lease=0.2)
    scripts.lease(qk, 1, "w1", "r1")
    _wait_past_deadline(real_redis, qk, "j1")
    assert scripts.lease(qk, 0, "w2", "r9").jobs == []  # only maintains: reaps j1
    assert real_app.job("j1").info().state is JobState.READY
    assert scripts.lease(qk, 1, "w1", "r1").jobs == []
    assert real_redis.zscore(qk.leased, "j1") is None
    info = real_app.job("j1").info()
    assert info.state is JobState.READY and info.attempts == 0
    assert [j for j, _ in scripts.lease(qk, 1, "w2", "r10").jobs] == ["j1"]


def _now_ms(client: redis.Redis) -> int:
    sec, usec = client.time()
    return int(sec) * 1000 + int(usec) // 1000
