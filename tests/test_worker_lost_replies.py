"""Lost lease replies with real worker processes (issue 9, item 2).

A ``scheduler worker`` process talks to the real server through a
:class:`tests.proxy.RespProxy`, which forwards a lease call and then cuts the
connection once the server has answered it: the lease ran, its reply never
arrives. Cut are the waiter's ``BLPOP`` + pipelined lease and the
dispatcher's round trips (starts, reports and the lease in one write), with
a thread and a process pool, and with an outage long enough for the lost
lease to expire before the worker asks again. Each execution of the
``tally`` task appends a line to a file, so the tests see every run: none
is run twice, none is lost, the attempts are right, and the worker exits 0
on SIGTERM with no traceback.
"""

from __future__ import annotations

import collections
import importlib
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from scheduler import Job, JobState, Scheduler
from scheduler.devserver import DevServer
from tests.helpers import Output, start_worker, wait_until
from tests.proxy import RespProxy, lease_without_wait, wait_blocked, waiter_lease


@pytest.fixture
def proxy(redis_server: DevServer) -> Iterator[RespProxy]:
    p = RespProxy("127.0.0.1", redis_server.port)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def papp(
    redis_server: DevServer, real_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Scheduler]:
    """``tests/apps/procapp.py``'s app with a prefix of its own: a worker left
    over by another test (prefix ``p``) cannot take these jobs."""
    monkeypatch.setenv("SCHEDULER_TEST_URL", redis_server.url)
    monkeypatch.setenv("SCHEDULER_TEST_PREFIX", f"lost{uuid.uuid4().hex[:8]}")
    sys.modules.pop("tests.apps.procapp", None)
    procapp = importlib.import_module("tests.apps.procapp")
    yield procapp.app
    procapp.app.close()


@pytest.fixture
def runs_file(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.touch()
    return path


def start(proxy: RespProxy, runs_file: Path, *args: str) -> Output:
    """A worker of ``tests.apps.procapp`` talking to Redis through ``proxy``."""
    env = {
        "SCHEDULER_TEST_URL": proxy.url,
        "SCHEDULER_TEST_RUNS": str(runs_file),
        "PYTHONFAULTHANDLER": "1",  # stacks on SIGABRT, should it hang
    }
    out = Output(start_worker(*args, env=env))
    out.wait_for(" started: ")
    return out


def runs(path: Path) -> dict[str, list[int]]:
    """Job id -> the attempt numbers of its executions, in order."""
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for line in path.read_text().splitlines():
        job_id, attempt, _pid = line.split()
        seen[job_id].append(int(attempt))
    return dict(seen)


def server_now(app: Scheduler) -> datetime:
    """The server's clock."""
    seconds, micros = app.redis.time()
    return datetime.fromtimestamp(seconds + micros / 1e6, tz=UTC)


def finish_cleanly(out: Output) -> str:
    """SIGTERM the worker: it must exit 0 without a traceback (one that does
    not stop within 30 s fails with every thread's stack: Output.finish)."""
    code, text = out.finish()
    assert code == 0, text
    assert "Traceback" not in text, text
    return text


def assert_each_ran_once(runs_file: Path, jobs: Sequence[Job]) -> None:
    """Every job of ``jobs`` ran exactly once (attempt 1), and no other."""
    seen = runs(runs_file)
    ids = [j.id for j in jobs]
    assert sorted(seen) == sorted(ids), "a job was lost or an unknown one ran"
    assert {i: seen[i] for i in ids} == {i: [1] for i in ids}, "a job ran twice"


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_lost_waiter_lease_replies_run_each_job_once(
    papp: Scheduler, proxy: RespProxy, runs_file: Path, pool: str
) -> None:
    """The waiter's BLPOP returned, the lease behind it ran, the reply was
    lost: the worker asks the same request again and gets those leases."""
    from tests.apps.procapp import tally

    proxy.cut(waiter_lease)  # armed before the worker's first wait
    out = start(proxy, runs_file, "--concurrency", "2", "--pool", pool)
    jobs = []
    for i in range(4):
        # The worker's wait is under the rule (and blocked in the server)
        # before the jobs arrive.
        proxy.wait_for(lambda i=i: len(proxy.matched) > i)
        if i < 3:
            # For the next wait, armed before this one is cut: the worker
            # recovers and waits again without the test thread running.
            proxy.cut(waiter_lease)
        wait_until(lambda: wait_blocked(proxy, papp.redis))
        # One call, one wake marker: the waiter's lease takes the whole batch.
        batch = papp.enqueue_many([tally.spec() for _ in range(i % 3 + 1)])  # 1-3 jobs
        proxy.wait_for(lambda i=i: proxy.cuts > i)
        for job in batch:
            assert job.result(timeout=30) == 1
        jobs += batch
    text = finish_cleanly(out)
    assert text.count("wait for new jobs failed") == 4, text
    assert_each_ran_once(runs_file, jobs)
    assert all(j.info().attempts == 1 for j in jobs)


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_lost_round_trip_replies_run_each_job_once(
    papp: Scheduler, proxy: RespProxy, runs_file: Path, pool: str
) -> None:
    """The dispatcher's round trips (starts, successes and a lease in one
    write) lose their replies: reports are repeated idempotently and the lease
    is asked again with the same request id."""
    from tests.apps.procapp import tally

    out = start(proxy, runs_file, "--concurrency", "2", "--prefetch", "2", "--pool", pool)
    wait_until(lambda: wait_blocked(proxy, papp.redis))
    proxy.cut(lease_without_wait, times=6)
    jobs = papp.enqueue_many([tally.spec(0.01) for _ in range(40)])
    proxy.wait_for(lambda: proxy.cuts >= 6, timeout=60)
    for job in jobs:
        assert job.result(timeout=60) == 1
    text = finish_cleanly(out)
    assert_each_ran_once(runs_file, jobs)
    assert all(j.info().attempts == 1 for j in jobs), text


@pytest.mark.parametrize("reaped", [False, True], ids=["unreaped", "reaped"])
def test_lease_expiring_before_the_retry_runs_the_job_once(
    papp: Scheduler, proxy: RespProxy, runs_file: Path, reaped: bool
) -> None:
    """The lost lease expires (0.5 s) while the worker cannot reach Redis
    (an outage until the test ends it: nothing the worker sends gets
    through). Unreaped, the retry still answers it, renewed (as a heartbeat
    would: it must not be reaped under the worker as it starts), and the
    worker runs it; reaped meanwhile (by another worker's lease call, here
    the test's), the never-started lease gave its attempt back and the retry
    answers nothing: the job is leased afresh. Once either way, attempt 1.

    Before: the retry answered the expired lease unrenewed; the next lease
    call (the worker's own or another's, here the test's) reaped it as the
    job started, and it ran twice or at attempt 2. And the 2 s outage could end before the
    test's reaper ran (under load), so the variants were not what they said.
    """
    from tests.apps.procapp import tally

    proxy.cut(waiter_lease, outage=None)
    out = start(proxy, runs_file, "--concurrency", "2")
    proxy.wait_for(lambda: len(proxy.matched) == 1)
    wait_until(lambda: wait_blocked(proxy, papp.redis))
    job = tally.options(lease=0.5).enqueue(0.3)
    proxy.wait_for(lambda: proxy.cuts == 1)
    info = job.info()
    assert info.state is JobState.LEASED and info.lease_deadline is not None
    # The lease expires before the worker reaches Redis again.
    wait_until(lambda: server_now(papp) > info.lease_deadline, interval=0.05)
    assert job.info().started_at is None
    qk = papp.queue_keys("default")

    def reaped_by_another_worker() -> JobState:
        papp.scripts.lease(qk, 0, "reaper", "reaper:0")  # leases none, reaps the expired
        return job.status

    if reaped:
        assert reaped_by_another_worker() is JobState.READY
        assert job.info().attempts == 0  # never started: the attempt is given back
    proxy.end_outage()
    # Once the worker started it (its retry was answered), another worker's
    # lease calls go on reaping (every 20 ms) while it runs.
    wait_until(lambda: job.info().started_at is not None or job.status.is_final, timeout=30)
    wait_until(lambda: reaped_by_another_worker().is_final, timeout=30, interval=0.02)
    assert job.result(timeout=30) == 1
    finish_cleanly(out)
    assert_each_ran_once(runs_file, [job])
    assert job.info().attempts == 1
