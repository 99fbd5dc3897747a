"""The dispatcher with real worker processes on a real server (issue 9 items
1, 4 and 5): every queue paced, attempts count started executions, expired
leases requeued on time by idle workers, a frozen (SIGSTOP) worker."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from scheduler import JobState, Scheduler
from scheduler.backend.record import parse_record
from tests.helpers import ROOT, start_worker, stop, wait_until


@pytest.fixture
def dapp(papp: Scheduler) -> Iterator[Scheduler]:
    """The app of a freshly imported ``tests.apps.procapp`` (``papp`` may hand
    out the previous test's, closed, module's app)."""
    procapp = importlib.import_module("tests.apps.procapp")  # the fresh module
    yield procapp.app
    procapp.app.close()


def run_worker(*args: str, role: str = "rescuer") -> subprocess.Popen[bytes]:
    """``python -m tests.apps.run_worker QUEUES MAX_BLOCK [CONCURRENCY [PREFETCH]]``."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.apps.run_worker", *args],
        cwd=ROOT,
        env={**os.environ, "WORKER_ROLE": role},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def blocked(client: redis.Redis) -> int:
    """Number of connections blocked in BLPOP (idle workers)."""
    return sum(1 for c in client.client_list() if c.get("cmd") == "blpop")


def test_idle_multi_queue_worker_promotes_a_delayed_job_of_its_second_queue(
    dapp: Scheduler,
) -> None:
    """Item 1: the delay is longer than the worker's longest block."""
    from tests.apps.procapp import whoami

    worker = run_worker("a,b", "0.5")
    try:
        wait_until(lambda: blocked(dapp.redis) >= 1, timeout=20)
        job = whoami.options(queue="b", delay=1.5).enqueue()
        assert job.result(timeout=15) == worker.pid
    finally:
        out = stop(worker)
    assert "Traceback" not in out, out


def test_idle_multi_queue_worker_requeues_an_expired_lease_of_its_second_queue(
    dapp: Scheduler,
) -> None:
    """Item 1: a dead worker's lease in the second queue comes back."""
    from tests.apps.procapp import hold

    job = hold.options(queue="b").enqueue("lost")
    qk = dapp.queue_keys("b")
    (leased,) = dapp.scripts.lease(qk, 1, "ghost", "ghost:0").jobs  # then "dies"
    dapp.scripts.start(qk, [(job.id, parse_record(*leased).token)])
    worker = run_worker("a,b", "0.5")
    try:
        assert job.result(timeout=15)["tag"] == "lost"
    finally:
        out = stop(worker)
    assert job.info().attempts == 2, out


def test_expired_lease_is_requeued_on_time_while_the_other_worker_idles(
    dapp: Scheduler,
) -> None:
    """Item 5: the rescuer was idle (blocked for up to 30 s) before the victim
    leased the job; it still requeues it about when its 1 s lease expires."""
    from tests.apps.procapp import hold

    victim = start_worker(role="victim")
    rescuer = None
    try:
        wait_until(lambda: blocked(dapp.redis) == 1, timeout=20)
        rescuer = start_worker()
        wait_until(lambda: blocked(dapp.redis) == 2, timeout=20)
        job = hold.enqueue("held")  # the longest-blocked worker (the victim) takes it
        # Started (a start is reported in the round trip after it, so a
        # worker killed within that moment would not be charged the attempt).
        wait_until(lambda: job.info().record.started_ms is not None, timeout=10)
        assert str(victim.pid) in job.info().worker
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        # Well under the rescuer's 30 s block: lease (1 s) + heartbeat slack.
        assert job.result(timeout=10)["pid"] == rescuer.pid
    finally:
        stop(victim)
        out = stop(rescuer) if rescuer is not None else ""
    assert job.info().attempts == 2, out


def test_killed_worker_charges_only_the_jobs_it_started(dapp: Scheduler) -> None:
    """Item 4: jobs leased into the prefetch buffer never ran: no attempt."""
    from tests.apps.procapp import hold

    jobs = [hold.enqueue(f"job{i}") for i in range(4)]
    victim = start_worker("--concurrency", "1", "--prefetch", "3", role="victim")
    try:
        wait_until(lambda: all(j.status is JobState.LEASED for j in jobs), timeout=20)
        wait_until(lambda: any(j.info().record.started_ms for j in jobs), timeout=10)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        stop(victim)
    started = [j for j in jobs if j.info().record.started_ms]
    assert len(started) == 1  # concurrency 1: one ran, three were buffered
    rescuer = start_worker("--concurrency", "2")
    try:
        for job in jobs:
            job.result(timeout=30)
    finally:
        out = stop(rescuer)
    attempts = {j.id: j.info().attempts for j in jobs}
    assert attempts == {j.id: 2 if j in started else 1 for j in jobs}, out


def test_frozen_idle_worker_does_not_use_up_attempts(dapp: Scheduler) -> None:
    """Item 4: Redis runs the lease queued behind a frozen worker's BLPOP; the
    never-started lease expires without charging the job's only attempt."""
    from tests.apps.procapp import once

    frozen = start_worker(role="victim")
    rescuer = None
    try:
        wait_until(lambda: blocked(dapp.redis) == 1, timeout=20)
        frozen.send_signal(signal.SIGSTOP)
        job = once.enqueue()  # max_attempts=1, lease 1 s
        wait_until(lambda: job.status is JobState.LEASED, timeout=10)
        assert str(frozen.pid) in job.info().worker
        rescuer = start_worker()
        assert job.result(timeout=15) == rescuer.pid
        info = job.info()
        assert info.state is JobState.SUCCEEDED and info.attempts == 1
    finally:
        frozen.send_signal(signal.SIGCONT)
        stop(frozen)
        if rescuer is not None:
            stop(rescuer)
