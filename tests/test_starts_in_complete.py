"""Starts carried by the complete call (lua/complete.lua, lib/starts.lua):
the same stamps as start.lua, in the same call that may also finish the job
-- on fakeredis and on a real Redis server (``client`` fixture), and through
a real worker."""

from __future__ import annotations

import pytest
import redis

from scheduler import Scheduler
from scheduler.backend.codes import CompleteCode, StartCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.record import JobState, parse_record
from scheduler.backend.scripts import Scripts
from scheduler.errors import ScriptError
from tests.helpers import running, wait_until
from tests.test_scripts import item, lease_ids


@pytest.fixture
def s(client: redis.Redis) -> Scripts:
    return Scripts(client)


@pytest.fixture
def qk() -> QueueKeys:
    return QueueKeys("t", "q")


def record(client: redis.Redis, qk: QueueKeys, job_id: str):  # type: ignore[no-untyped-def]
    return parse_record(job_id, client.hget(qk.jobs, job_id))  # type: ignore[arg-type]


def leased(s: Scripts, qk: QueueKeys, n: int, req: str) -> dict[str, str]:
    return {
        job_id: parse_record(job_id, text).token for job_id, text in s.lease(qk, n, "w1", req).jobs
    }


def test_a_job_started_and_finished_in_one_call_keeps_its_start(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a"), item("b"), item("c")])
    tok = leased(s, qk, 3, "r1")
    leases = [(j, tok[j]) for j in ("a", "b", "c")]
    # a and b finished; c started and still running; all three started.
    call = s.complete_call(qk, [("a", tok["a"], "1"), ("b", tok["b"], "2")], leases)
    assert s.run_many([call]) == [[CompleteCode.RECORDED, CompleteCode.RECORDED]]
    a, b, c = (record(client, qk, j) for j in ("a", "b", "c"))
    assert a.state is JobState.SUCCEEDED and b.state is JobState.SUCCEEDED
    assert a.started_ms is not None and a.finished_ms is not None
    assert a.started_ms <= a.finished_ms and a.attempts == 1 and a.outcome == "1"
    assert c.state is JobState.LEASED and c.started_ms is not None and c.attempts == 1
    # Stamped once: start.lua sees it started; a repeat of the call changes nothing.
    assert s.start(qk, [("c", tok["c"])]) == [StartCode.ALREADY_STARTED]
    assert s.run_many([call]) == [[CompleteCode.ALREADY_RECORDED] * 2]
    assert record(client, qk, "c").started_ms == c.started_ms
    assert record(client, qk, "a") == a


def test_starts_of_lost_or_unknown_leases_stamp_nothing(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    s.enqueue(qk, [item("a"), item("b")])
    tok = leased(s, qk, 2, "r1")
    call = s.complete_call(qk, [("a", tok["a"], "1")], [("b", "999"), ("zz", "1")])
    assert s.run_many([call]) == [[CompleteCode.RECORDED]]
    assert record(client, qk, "b").started_ms is None  # wrong token: not stamped
    assert not client.hexists(qk.jobs, "zz")
    # a complete without a start of its own leaves the start empty (as before)
    assert record(client, qk, "a").started_ms is None


def test_a_job_started_in_complete_keeps_its_attempt_when_its_lease_expires(
    s: Scripts, qk: QueueKeys, client: redis.Redis
) -> None:
    """The attempt semantics of start.lua: a started lease that expires is charged."""
    s.enqueue(qk, [item("a", options="1,30,1000,-1"), item("b")])  # a: 30 ms lease, ONE attempt
    tok = leased(s, qk, 2, "r1")
    call = s.complete_call(qk, [("b", tok["b"], "1")], [("a", tok["a"])])
    assert s.run_many([call]) == [[CompleteCode.RECORDED]]
    assert record(client, qk, "a").started_ms is not None
    wait_until(
        lambda: (
            (s.lease(qk, 0, "w3", f"m{id(object())}"), record(client, qk, "a").state)[1]
            is JobState.DEAD
        )
    )


def test_complete_refuses_a_bad_start_count(s: Scripts, qk: QueueKeys) -> None:
    s.enqueue(qk, [item("a")])
    (job_id,) = lease_ids(s, qk, 1, "r1")
    call = s.complete_call(qk, [(job_id, "1", "1")], [(job_id, "1")])
    bad = [call.args[:-1], [*call.args, "x"], [*call.args[:-3], "x", *call.args[-2:]]]
    for args in bad:
        with pytest.raises(ScriptError, match="bad argument count"):
            s.run_many([type(call)(call.name, call.keys, args, call.parse)])


def test_worker_records_every_start_and_charges_one_attempt(real_app: Scheduler) -> None:
    """Through a real worker: each finished job has started once, before it finished."""

    @real_app.task
    def noop(i: int) -> int:
        return i

    jobs = [noop.enqueue(i) for i in range(200)]
    with running(real_app, concurrency=4, prefetch=4):
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=30)
    for job in jobs:
        rec = job.info().record
        assert rec.attempts == 1 and rec.started_ms is not None
        assert rec.finished_ms is not None and rec.started_ms <= rec.finished_ms


def test_starts_of_running_jobs_are_recorded_without_waiting_for_an_outcome(
    real_app: Scheduler,
) -> None:
    """A start report waits at most START_REPORT_WAIT for an outcome to travel
    with: jobs that run on (no outcome at all) still get their start recorded."""
    import threading

    go = threading.Event()

    @real_app.task
    def hold() -> None:
        go.wait(20)

    jobs = [hold.enqueue() for _ in range(3)]
    try:
        with running(real_app, concurrency=3, prefetch=0):
            wait_until(lambda: all(j.info().record.started_ms for j in jobs), timeout=10)
            assert all(j.status is JobState.LEASED for j in jobs)  # none finished
            go.set()
            wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=10)
    finally:
        go.set()
    assert all(j.info().attempts == 1 for j in jobs)
