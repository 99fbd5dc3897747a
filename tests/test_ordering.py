"""Dispatch order equals a simple reference model (hypothesis), on fakeredis and Redis.

The model: among jobs available when a lease happens, take the lowest
``(score, enqueue index)`` where ``score = aging * (ready_s - since_s) - priority``
(the aging clock since the rate was set at ``since``; ``-priority`` when that
is 0; rate changes: ``tests/test_dispatch_order.py``) and
``priority = weight * time / resource`` (or the explicit priority). It is
written independently of the scripts; only each job's ready time (server
clock) is read back from Redis, since the model cannot know the server's time.
"""

from __future__ import annotations

import time

import attrs
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import Scheduler
from scheduler.backend.connection import server_time_ms
from scheduler.backend.record import parse_record
from scheduler.task import JobSpec

SMALL = st.sampled_from([0.5, 1.0, 2.0, 3.0])
PRIORITY = st.one_of(
    st.sampled_from([-1.0, 0.0, 1.0, 2.5]),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)


@attrs.frozen
class Enq:
    weight: float
    time: float
    resource: float
    priority: float | None
    delay: str  # "now", "soon" (due within a few ms) or "far" (not due during the test)


@attrs.frozen
class Lease:
    n: int


enq = st.builds(
    Enq,
    weight=st.one_of(SMALL, st.just(0.0)),
    time=SMALL,
    resource=SMALL,
    priority=st.one_of(st.none(), PRIORITY),
    delay=st.sampled_from(["now", "now", "now", "soon", "far"]),
)
ops = st.lists(st.one_of(enq, enq, st.builds(Lease, st.integers(1, 5))), min_size=1, max_size=40)
aging = st.sampled_from([0.0, 0.0, 0.001, 0.5, 3.0, 1e6])


def check(client: redis.Redis, operations: list[Enq | Lease], rate: float) -> None:
    client.flushall()
    app = Scheduler(client, prefix="o", events_maxlen=0)
    app.set_aging("q", rate)
    qk = app.queue_keys("q")
    since = int(client.hget(qk.meta, "aging_since"))  # type: ignore[arg-type]
    pending: list[tuple[float, int, str]] = []  # model: (score, index, job id), available
    soon: list[tuple[int, int, str, float]] = []  # (eta ms, index, id, priority), not yet due
    index = 0
    for op in operations:
        if isinstance(op, Enq):
            priority = op.priority if op.priority is not None else op.weight * op.time / op.resource
            options = (
                {"weight": op.weight, "time": op.time, "resource": op.resource}
                if op.priority is None
                else {"priority": op.priority}
            )
            if op.delay == "soon":
                options["delay"] = 0.003
            elif op.delay == "far":
                options["delay"] = 3600
            job = app.enqueue("m:f", queue="q", **options)  # type: ignore[arg-type]
            rec = parse_record(job.id, client.hget(qk.jobs, job.id))  # type: ignore[arg-type]
            if op.delay == "now":
                pending.append((score(priority, rec.ready_ms, rate, since), index, job.id))
            elif op.delay == "soon":
                soon.append((rec.ready_ms, index, job.id, priority))
            index += 1
        else:
            if soon:  # make the model's "due" true on the server before leasing
                latest = max(eta for eta, *_ in soon)
                while server_time_ms(client) <= latest:
                    time.sleep(0.001)
                pending.extend((score(p, eta, rate, since), i, jid) for eta, i, jid, p in soon)
                soon.clear()
            pending.sort()
            expected = [jid for _, _, jid in pending[: op.n]]
            del pending[: op.n]
            got = [
                jid
                for jid, _ in app.scripts.lease(
                    qk, op.n, "w", f"r{index}-{op.n}-{len(pending)}"
                ).jobs
            ]
            assert got == expected
            index += 1  # distinct lease request ids


def score(priority: float, ready_ms: int, rate: float, since: int) -> float:
    # Deliberately restated (not imported) so the model is independent of the code.
    aged = 0.0 if rate == 0 else 0.0 + rate * ((ready_ms - since) / 1000)
    return -priority if aged == 0 else aged - priority


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=ops, rate=aging)
def test_dispatch_order_matches_model(
    client: redis.Redis, operations: list[Enq | Lease], rate: float
) -> None:
    check(client, operations, rate)


def test_equal_priority_is_fifo_even_within_one_millisecond(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="o")
    jobs = app.enqueue_many([JobSpec("m:f", (i,)) for i in range(300)])
    got = [j for j, _ in app.scripts.lease(app.queue_keys("default"), 300, "w", "r").jobs]
    assert got == [j.id for j in jobs]


def test_delayed_job_never_runs_before_its_eta(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="o")
    job = app.enqueue("m:f", delay=0.05, priority=1e12)
    app.enqueue("m:f", priority=-1e12)
    eta = job.info().record.ready_ms
    leased = []
    while job.id not in leased:
        reply = app.scripts.lease(app.queue_keys("default"), 10, "w", f"r{time.monotonic()}")
        now = server_time_ms(client)
        if job.id in [j for j, _ in reply.jobs]:
            assert now >= eta
        leased += [j for j, _ in reply.jobs]
        time.sleep(0.005)
