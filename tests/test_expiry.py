"""Finished records expire on time, busy or idle (issue 11 item 10, issue 9 item 8):
bounded work per call, but enough calls."""

from __future__ import annotations

import redis

from scheduler import Scheduler
from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import parse_record
from scheduler.backend.scripts import EnqueueItem, Scripts
from tests.helpers import enqueue_item, running, wait_until

#: lib/expiry.lua EXPIRY_SLACK_MS: idle workers wake for expiry no more often.
EXPIRY_SLACK_S = 1.0


def item(job_id: str, result_ttl_ms: int) -> EnqueueItem:
    return enqueue_item(job_id, options=f"3,60000,{result_ttl_ms},-1")


def succeed(s: Scripts, qk: QueueKeys, n: int, result_ttl_ms: int, result: str = "1") -> None:
    """Enqueue, lease and complete ``n`` jobs in three script calls."""
    s.enqueue(qk, [item(f"j{i}", result_ttl_ms) for i in range(n)])
    leased = [parse_record(j, t) for j, t in s.lease(qk, n, "w", "fill").jobs]
    assert len(leased) == n
    s.complete(qk, [(r.job_id, r.token, result) for r in leased])


def test_an_idle_lease_call_is_told_to_come_back_at_once_while_behind(
    client: redis.Redis,
) -> None:
    qk = QueueKeys("t", "q")
    s = Scripts(client, expire_batch=3)
    succeed(Scripts(client), qk, 7, result_ttl_ms=0)  # complete deletes what is due then
    client.zadd(qk.done, {f"j{i}": 1 for i in range(7)})  # all long expired
    calls = []
    for k in range(4):
        calls.append(s.lease(qk, 1, "w", f"r{k}").wake_ms)
    assert calls[:2] == [0, 0]  # 3 + 3 deleted, more due: call again at once
    assert client.zcard(qk.done) == 0 and client.hlen(qk.jobs) == 0
    assert calls[2] == -1  # 1 deleted (not a full batch), nothing pending


def test_an_idle_worker_is_woken_for_the_next_expiry_but_not_too_often(
    client: redis.Redis,
) -> None:
    qk = QueueKeys("t", "q")
    s = Scripts(client)
    succeed(s, qk, 1, result_ttl_ms=60_000)
    wake = s.lease(qk, 1, "w", "idle").wake_ms
    assert 50_000 < wake <= 60_000  # not -1: the record's expiry is due then
    succeed(s, QueueKeys("t", "q2"), 1, result_ttl_ms=300)
    assert s.lease(QueueKeys("t", "q2"), 1, "w", "idle2").wake_ms == EXPIRY_SLACK_S * 1000


def test_a_busy_queue_deletes_at_least_twice_what_it_completes(client: redis.Redis) -> None:
    qk = QueueKeys("t", "q")
    s = Scripts(client, expire_batch=1)
    client.zadd(qk.done, {f"old{i}": 1 for i in range(100)})
    client.hset(qk.jobs, mapping={f"old{i}": "x" for i in range(100)})
    succeed(s, qk, 10, result_ttl_ms=60_000)  # one complete call of 10 jobs
    assert client.zcard(qk.done) == 100 - 20 + 10


def test_4000_succeeded_records_on_an_idle_queue_are_gone_soon_after_their_ttl(
    real_redis: redis.Redis,
) -> None:
    app = Scheduler(real_redis, prefix="t")
    app.backend.register_queue("default")
    qk = QueueKeys("t", "default")
    ttl_s = 2.0
    succeed(Scripts(real_redis), qk, 4000, result_ttl_ms=int(ttl_s * 1000))
    assert real_redis.zcard(qk.done) == 4000
    with running(app, concurrency=1):  # one idle worker (max block 30 s)
        # Documented bound: TTL + EXPIRY_SLACK_MS + one round trip per
        # EXPIRE_BATCH records; a generous margin for a loaded test machine.
        wait_until(lambda: real_redis.hlen(qk.jobs) == 0, timeout=ttl_s + EXPIRY_SLACK_S + 4.0)
    assert real_redis.zcard(qk.done) == 0
