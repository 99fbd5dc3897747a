"""Worker processes started through the CLI: crash recovery (kill -9), graceful
SIGTERM, the process pool, and usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler import JobState, Scheduler
from tests.helpers import Output, start_worker, stop, wait_until, whoami_pool

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_kill_9_mid_job_loses_nothing(papp: Scheduler) -> None:
    from tests.apps.procapp import hold

    jobs = [hold.enqueue(f"job{i}") for i in range(4)]
    victim = start_worker("--concurrency", "4", role="victim")
    try:
        # Started (a start is reported in the round trip after it: a worker
        # killed before that is not charged the attempt).
        wait_until(lambda: all(j.info().started_at is not None for j in jobs), timeout=20)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        stop(victim)
    rescuer = start_worker("--concurrency", "2")
    try:
        results = [j.result(timeout=30) for j in jobs]
    finally:
        out = stop(rescuer)
    assert [r["tag"] for r in results] == [f"job{i}" for i in range(4)], out
    assert {r["pid"] for r in results} == {rescuer.pid}
    for job in jobs:
        info = job.info()
        assert info.state is JobState.SUCCEEDED and info.attempts == 2
        assert str(rescuer.pid) in info.worker


def test_sigterm_releases_running_jobs_within_grace(papp: Scheduler) -> None:
    from tests.apps.procapp import hold

    job = hold.enqueue("long")
    worker = start_worker("--grace", "0.3", role="victim")
    try:
        wait_until(lambda: job.status is JobState.LEASED, timeout=20)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        out = stop(worker)
    info = job.info()
    assert info.state is JobState.READY and info.attempts == 0, out
    assert "released (back to ready)" in out


def test_a_sigterm_to_the_process_group_lets_a_pool_childs_job_finish(
    papp: Scheduler, tmp_path: Path
) -> None:
    """systemd (KillMode=control-group) and `kill -TERM -PGID` send SIGTERM
    to the worker *and* its process-pool children. The running job finishes
    within the grace period and succeeds, as with a thread pool. Before, the
    SIGTERM raised SystemExit inside the task: the job went dead at once
    ("SystemExit: 0", not in retry_on), and the child, waiting for the next
    job, was killed 5 s later without its shutdown hooks."""
    from tests.apps.procapp import gated

    started, release = tmp_path / "started", tmp_path / "release"
    job = gated.enqueue(str(started), str(release))
    env = {"SCHEDULER_TEST_SHUTDOWN_DIR": str(tmp_path)}
    worker = start_worker("--pool", "process", "-c", "1", "--grace", "60", env=env)
    try:
        wait_until(started.exists, timeout=60)
        child = int(started.read_text())
        worker.send_signal(signal.SIGTERM)
        os.kill(child, signal.SIGTERM)  # as the process group's SIGTERM does
        release.touch()
        code = worker.wait(timeout=30)
    finally:
        out = stop(worker)
    assert code == 0, out
    info = job.info()
    assert info.state is JobState.SUCCEEDED and job.result(timeout=0) == child, out
    assert (tmp_path / str(child)).exists(), "the child's shutdown hooks did not run"


def test_process_pool_runs_tasks_in_children(papp: Scheduler) -> None:
    from tests.apps.procapp import whoami

    jobs = [whoami.enqueue() for _ in range(4)]
    worker = start_worker("--pool", "process", "--concurrency", "2")
    try:
        pids = {j.result(timeout=60) for j in jobs}
    finally:
        out = stop(worker)
    assert worker.pid not in pids and len(pids) >= 1, out


def test_process_pool_children_import_the_app_with_the_loader_passed_in(papp: Scheduler) -> None:
    """A spawned child gets the loader by reference (pickled) and imports the
    app with it -- the default loader of a Worker built in code."""
    with whoami_pool(1) as (_runner, run):
        outcome = run()
    assert outcome.ok and int(outcome.text) != os.getpid()


def test_process_pool_children_start_with_the_pool(
    papp: Scheduler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each slot starts its child before a job comes, so the duration of a
    job that comes once the pool is up (logged, learned for time="auto")
    excludes the child's start-up -- a new interpreter importing the app.
    Before, a child started with its slot's first job."""
    monkeypatch.setenv("SCHEDULER_TEST_STARTUP_DIR", str(tmp_path))
    with whoami_pool(2) as (_runner, run):
        wait_until(lambda: len(list(tmp_path.iterdir())) == 2, timeout=60)
        started = {int(p.name) for p in tmp_path.iterdir()}
        outcome = run()
    assert outcome.ok and int(outcome.text) in started
    assert len(list(tmp_path.iterdir())) == 2  # no other child started


def test_a_process_pool_worker_leases_once_its_children_started(
    papp: Scheduler, tmp_path: Path
) -> None:
    """A job waiting when a process-pool worker starts is leased only once
    the children imported the app and ran their start-up hooks (2 s each
    here): its start (server clock) comes after, so its duration -- logged,
    learned for time="auto" -- excludes the start-up. Before, the worker
    leased at once and the job waited for its child, started."""
    from tests.apps.procapp import gated

    hooks, started, release = tmp_path / "hooks", tmp_path / "started", tmp_path / "release"
    hooks.mkdir()
    job = gated.enqueue(str(started), str(release))
    env = {"SCHEDULER_TEST_STARTUP_DIR": str(hooks), "SCHEDULER_TEST_STARTUP_DELAY": "2"}
    worker = start_worker("--pool", "process", "-c", "2", env=env)
    try:
        # The start is reported in the round trip after it; read it while the job runs.
        wait_until(lambda: job.info().started_at is not None, timeout=60)
        started_at = job.info().started_at
        release.touch()
        pid = job.result(timeout=60)
    finally:
        release.touch()
        out = stop(worker)
    woke = {int(p.name): float(p.read_text()) for p in hooks.iterdir()}
    assert pid in woke and len(woke) == 2, out
    assert started_at is not None
    # Both in ms (the record's resolution): started no earlier than the last hook woke.
    assert round(started_at.timestamp() * 1000) >= int(max(woke.values()) * 1000), out
    assert "not started after" not in out


def test_a_process_pool_worker_stopped_while_its_children_start_exits(
    papp: Scheduler, tmp_path: Path
) -> None:
    """SIGTERM while the worker waits for its children (their start-up hooks
    take 120 s here, longer than the worker would wait): it exits 0 at once
    -- without waiting for them -- having leased nothing."""
    from tests.apps.procapp import whoami

    job = whoami.enqueue()
    env = {"SCHEDULER_TEST_STARTUP_DIR": str(tmp_path), "SCHEDULER_TEST_STARTUP_DELAY": "120"}
    worker = Output(start_worker("--pool", "process", "-c", "1", env=env))
    worker.wait_for(" started: redis=", timeout=60)
    code, out = worker.finish(timeout=30)  # the children's 5 s kill deadline in it
    assert code == 0, out
    info = job.info()
    assert info.state is JobState.READY and info.attempts == 0 and info.started_at is None, out
    assert not list(tmp_path.iterdir())  # no child finished starting


def test_a_process_pool_worker_whose_children_fail_to_start_does_not_wait(
    papp: Scheduler,
) -> None:
    """Children whose start-up hook raises die starting: the worker leases
    at once (it does not wait out its start-up timeout) and the job fails in
    a new child, as before."""
    from tests.apps.procapp import once

    job = once.enqueue()
    env = {"SCHEDULER_TEST_STARTUP_FAIL": "1"}
    worker = start_worker("--pool", "process", "-c", "1", env=env)
    try:
        wait_until(lambda: job.status is JobState.DEAD, timeout=50)
    finally:
        out = stop(worker)
    info = job.info()
    assert info.error is not None and "exited with code 1" in info.error["error"], out
    assert "not started after" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere.module:app"], "cannot load app"),
        (["tests.apps.procapp"], "package.module:app"),
        (["tests.apps.procapp:hold"], "not a scheduler.Scheduler"),
        (["tests.apps.procapp:app", "--concurrency", "0"], "concurrency"),
        (["tests.apps.procapp:app", "--queues", "bad{q}"], "invalid queue name"),
    ],
)
def test_worker_usage_errors(papp: Scheduler, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "worker", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
