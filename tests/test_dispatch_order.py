"""Dispatch order under a burst of due jobs and under aging-rate changes, on a real server.

* A burst: however many delayed jobs are due at once (more than a promotion
  batch), no job is leased ahead of a better one that was already due.
* Aging changes: a job's effective priority is its priority plus the aging
  accrued at each rate while it waited (``docs/design.md``, "Ordering");
  dispatch follows it exactly, checked against a model that keeps the
  history of rates (hypothesis).
"""

from __future__ import annotations

import bisect
import itertools
import re

import attrs
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import Scheduler
from scheduler.backend.connection import server_time_ms
from scheduler.backend.lualoader import read_lua
from scheduler.backend.record import parse_record
from scheduler.backend.scripts import ScriptReplyError, Scripts
from scheduler.errors import InvalidPriorityError
from scheduler.priority import MAX_AGING_RATE
from scheduler.task import EnqueueOptions, JobSpec
from tests.helpers import wait_until


def wait_server_past(client: redis.Redis, ms: int) -> None:
    """Wait until the server clock is past ``ms`` (ms since the Unix epoch)."""
    wait_until(lambda: server_time_ms(client) > ms, timeout=5)


def spec(priority: float, delay: float, i: int) -> JobSpec:
    return JobSpec("m:f", (i,), {}, EnqueueOptions(priority=priority, delay=delay))


def lease_all(app: Scheduler, queue: str, n: int, total: int) -> list[str]:
    """Lease ``n`` at a time until ``total`` jobs were leased; the dispatch order."""
    qk = app.queue_keys(queue)
    order: list[str] = []
    for call in itertools.count():
        assert call < 10 * total, "leasing made no progress"
        order += [j for j, _ in app.scripts.lease(qk, n, "w", f"burst-{call}").jobs]
        if len(order) >= total:
            return order
    raise AssertionError("unreachable")


@pytest.mark.parametrize("concurrency", [1, 10])
def test_burst_of_due_jobs_keeps_priority_order(real_redis: redis.Redis, concurrency: int) -> None:
    # 300 low-priority jobs due first, then 50 high-priority ones due a
    # moment later: 350 due at once, more than one promotion batch (200).
    app = Scheduler(real_redis, prefix="b")
    assert app.scripts.promote_batch == 200
    low = app.enqueue_many([spec(0, 0.05, i) for i in range(300)])
    high = app.enqueue_many([spec(9, 0.06, i) for i in range(50)])
    eta = max(j.info().record.ready_ms for j in high)
    wait_until(lambda: server_time_ms(real_redis) > eta, timeout=5)
    order = lease_all(app, "default", concurrency, 350)
    assert order[:50] == [j.id for j in high]
    assert order[50:] == [j.id for j in low]


def test_lease_waits_for_promotion_then_leases(real_redis: redis.Redis) -> None:
    # With a batch of 5 and 12 due jobs, the first two calls only promote
    # (wake_ms 0: call again); the third promotes the rest and leases the best.
    s = Scripts(real_redis, promote_batch=5)
    app = Scheduler(real_redis, prefix="b")
    qk = app.queue_keys("default")
    jobs = app.enqueue_many([spec(i, 0.02, i) for i in range(12)])
    wait_until(lambda: server_time_ms(real_redis) > jobs[-1].info().record.ready_ms, timeout=5)
    first, second = s.lease(qk, 1, "w", "a"), s.lease(qk, 1, "w", "b")
    assert (first.jobs, first.wake_ms, second.jobs, second.wake_ms) == ([], 0, [], 0)
    third = s.lease(qk, 1, "w", "c")
    assert [j for j, _ in third.jobs] == [jobs[-1].id]


def lease_ids(app: Scheduler, queue: str, n: int, tag: str) -> list[str]:
    return [j for j, _ in app.scripts.lease(app.queue_keys(queue), n, "w", tag).jobs]


def test_raising_the_rate_does_not_invert_waiting_jobs(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="a")
    old = app.enqueue("m:f", priority=1)
    app.set_aging("default", 0.1)
    new = app.enqueue("m:f", priority=1000)
    assert lease_ids(app, "default", 2, "r") == [new.id, old.id]


def test_turning_aging_off_keeps_what_was_accrued(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="a")
    app.set_aging("default", 1.0)
    old = app.enqueue("m:f", priority=1e6)
    app.set_aging("default", 0)
    new = app.enqueue("m:f", priority=0)
    assert lease_ids(app, "default", 2, "r") == [old.id, new.id]


def test_accrued_aging_lets_an_old_job_overtake(real_redis: redis.Redis) -> None:
    # 1000 units per second for >= 30 ms is >= 30 units: more than the gap of 10.
    app = Scheduler(real_redis, prefix="a")
    app.set_aging("default", 1000)
    old = app.enqueue("m:f", priority=0)
    start = server_time_ms(real_redis)
    wait_until(lambda: server_time_ms(real_redis) >= start + 30, timeout=5)
    app.set_aging("default", 0)  # what it accrued stays
    new = app.enqueue("m:f", priority=10)
    assert lease_ids(app, "default", 2, "r") == [old.id, new.id]


@pytest.mark.parametrize("rate", [1e300, MAX_AGING_RATE * 1.0001, -1.0, float("inf"), True])
def test_out_of_range_rates_are_refused_and_nothing_changes(
    real_redis: redis.Redis, rate: float
) -> None:
    app = Scheduler(real_redis, prefix="a")
    app.set_aging("default", 0.5)
    with pytest.raises(InvalidPriorityError):
        app.set_aging("default", rate)
    assert app.backend.queue_snapshots(["default"])[0].aging == 0.5


@pytest.mark.parametrize("text", ["1e300", "inf", "nan", "-1", "1000001"])
def test_queue_config_script_refuses_out_of_range_rates(real_redis: redis.Redis, text: str) -> None:
    app = Scheduler(real_redis, prefix="a")
    with pytest.raises(ScriptReplyError, match="bad value"):
        app.scripts.queue_config(app.queue_keys("default"), "aging", text)
    assert real_redis.hget(app.queue_keys("default").meta, "aging") is None


def test_lua_and_python_agree_on_the_largest_rate() -> None:
    found = re.search(r"^local AGING_MAX = (\S+)$", read_lua("queue_config.lua"), re.M)
    assert found and float(found.group(1)) == MAX_AGING_RATE


def test_rate_change_promotes_due_jobs_first_in_bounded_calls(real_redis: redis.Redis) -> None:
    # 12 jobs due before a rate change are stamped with the old rate: a
    # rate change makes several bounded calls (batch 5) and then applies.
    app = Scheduler(real_redis, prefix="a")
    app.scripts.promote_batch = 5
    qk = app.queue_keys("default")
    jobs = app.enqueue_many([spec(i, 0.02, i) for i in range(12)])
    wait_until(lambda: server_time_ms(real_redis) > jobs[-1].info().record.ready_ms, timeout=5)
    steps = [app.scripts.queue_config_step(qk, "aging", "2.0")[0] for _ in range(3)]
    assert [int(c) for c in steps] == [0, 0, 1]
    assert real_redis.zcard(qk.delayed) == 0 and real_redis.zcard(qk.ready) == 12
    assert all(j.info().record.aged == 0 for j in jobs)  # stamped before the change


# -- model-based: rate changes while jobs wait ------------------------------


@attrs.frozen
class Enq:
    priority: float
    soon: bool  # due within a few ms (delayed), else ready at once


@attrs.frozen
class Aging:
    rate: float


@attrs.frozen
class Lease:
    n: int


@attrs.frozen
class Pause:
    ms: int


class ClockModel:
    """The aging clock as the rates' history: A(t) = sum of rate * waiting time.

    Deliberately restated (not imported): pieces ``(since_ms, at, rate)``,
    each continuing the one before at the moment of the change."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, float, float]] = [(0, 0.0, 0.0)]

    def value(self, t: int) -> float:
        since, at, rate = self.pieces[bisect.bisect_right(self.pieces, (t, float("inf"))) - 1]
        return at if rate == 0 else at + rate * ((t - since) / 1000)

    def change(self, t: int, rate: float) -> None:
        self.pieces.append((t, self.value(t), rate))


def check_with_rate_changes(client: redis.Redis, operations: list[object]) -> None:
    client.flushall()
    app = Scheduler(client, prefix="m", events_maxlen=0)
    qk = app.queue_keys("q")
    clock = ClockModel()
    pending: list[tuple[float, int, str]] = []  # (score, index, id): available
    soon: list[tuple[int, int, str, float]] = []  # (eta, index, id, priority)

    def score(priority: float, ready_ms: int) -> float:
        aged = clock.value(ready_ms)
        return -priority if aged == 0 else aged - priority

    for index, op in enumerate(operations):
        if isinstance(op, Enq):
            job = app.enqueue(
                "m:f", queue="q", priority=op.priority, delay=0.003 if op.soon else None
            )
            rec = parse_record(job.id, client.hget(qk.jobs, job.id))  # type: ignore[arg-type]
            if op.soon:
                soon.append((rec.ready_ms, index, job.id, op.priority))
            else:
                pending.append((score(op.priority, rec.ready_ms), index, job.id))
        elif isinstance(op, Aging):
            app.set_aging("q", op.rate)
            clock.change(int(client.hget(qk.meta, "aging_since")), op.rate)  # type: ignore[arg-type]
        elif isinstance(op, Pause):
            wait_server_past(client, server_time_ms(client) + op.ms - 1)
        else:
            assert isinstance(op, Lease)
            if soon:  # make them due on the server before leasing
                wait_server_past(client, max(eta for eta, *_ in soon))
                pending += [(score(p, eta), i, jid) for eta, i, jid, p in soon]
                soon.clear()
            pending.sort()
            expected = [jid for _, _, jid in pending[: op.n]]
            del pending[: op.n]
            assert lease_ids(app, "q", op.n, f"r{index}") == expected


RATES = st.sampled_from([0.0, 0.5, 3.0, 1000.0, MAX_AGING_RATE])
model_ops = st.lists(
    st.one_of(
        st.builds(
            Enq,
            priority=st.one_of(
                st.sampled_from([0.0, 1.0, 5.0, 1000.0]),
                st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
            ),
            soon=st.booleans(),
        ),
        st.builds(Aging, RATES),
        st.builds(Lease, st.integers(1, 4)),
        st.builds(Pause, st.integers(1, 15)),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=model_ops)
def test_dispatch_follows_accrued_aging_across_rate_changes(
    real_redis: redis.Redis, operations: list[object]
) -> None:
    check_with_rate_changes(real_redis, operations)


def test_a_rate_change_keeps_a_burst_in_order(real_redis: redis.Redis) -> None:
    # Both fixes together: 250 due jobs, a rate change, then leasing.
    app = Scheduler(real_redis, prefix="a")
    jobs = app.enqueue_many([spec(float(i % 7), 0.02, i) for i in range(250)])
    wait_until(lambda: server_time_ms(real_redis) > max(j.info().record.ready_ms for j in jobs), 5)
    app.set_aging("default", 0.5)
    order = lease_all(app, "default", 7, 250)
    by_id = {j.id: (-(i % 7), i) for i, j in enumerate(jobs)}
    assert order == sorted(by_id, key=by_id.__getitem__)
