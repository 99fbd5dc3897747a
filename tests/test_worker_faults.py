"""Worker processes under faults, on a real Redis server: the process pool's
shutdown and dead children, execution timeouts in both pools."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from scheduler import JobState, Scheduler, defaults
from scheduler.errors import JobFailedError
from tests.helpers import start_worker, stop, wait_until

pytestmark = pytest.mark.slow


def registered(app: Scheduler, proc: subprocess.Popen[bytes]) -> bool:
    """The worker process ``proc`` announced itself in the registry."""
    return any(f":{proc.pid}:" in e.id for e in app.backend.worker_entries())


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_process_pool_sigterm_exits_0_without_traceback(papp: Scheduler, busy: bool) -> None:
    from tests.apps.procapp import hold

    worker = start_worker("--pool", "process", "-c", "2", "--grace", "0.3", role="victim")
    try:
        if busy:
            job = hold.enqueue("long")
            wait_until(lambda: job.status is JobState.LEASED, timeout=30)
        else:
            wait_until(lambda: registered(papp, worker), timeout=30)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        out = stop(worker)
    assert code == 0, out
    assert "Traceback" not in out and "Error" not in out, out
    if busy:
        info = job.info()
        assert info.state is JobState.READY and info.attempts == 0, out


def test_a_killed_child_fails_only_its_own_job(papp: Scheduler, tmp_path: Path) -> None:
    from tests.apps.procapp import die_once, nap, whoami

    worker = start_worker("--pool", "process", "--concurrency", "3")
    try:
        naps = [nap.enqueue(1.0) for _ in range(2)]
        victim = die_once.enqueue(str(tmp_path / "marker"))
        assert victim.result(timeout=60) != int((tmp_path / "marker").read_text())
        assert all(isinstance(j.result(timeout=60), int) for j in naps)
        after = whoami.enqueue()  # the worker keeps serving
        assert isinstance(after.result(timeout=60), int)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        out = stop(worker)
    assert code == 0, out
    assert victim.info().attempts == 2, out  # the dead child's attempt counted
    assert [j.info().attempts for j in naps] == [1, 1], out  # the others were not charged
    assert "died (exit code -9)" in out and "Traceback" not in out, out


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_hung_task_times_out_and_goes_dead_by_its_policy(papp: Scheduler, pool: str) -> None:
    from tests.apps.procapp import hang, whoami

    worker = start_worker("--pool", pool, "--concurrency", "2")
    try:
        job = hang.enqueue()
        with pytest.raises(JobFailedError, match=r"timeout of 0\.5 s"):
            job.result(timeout=60)
        # The slot came back: a thread replaced the stuck one, or a new child.
        assert isinstance(whoami.enqueue().result(timeout=60), int)
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        out = stop(worker)
    info = job.info()
    assert info.state is JobState.DEAD and info.attempts == 2, out
    assert info.error is not None and info.error["type"] == "JobTimeoutError"
    assert code == 0 and "Traceback" not in out, out
    assert out.count("timed out after 0.5 s") == 2, out


def test_timeout_travels_in_the_record_and_old_records_still_decode(papp: Scheduler) -> None:
    from scheduler.backend.record import JobOptions
    from tests.apps.procapp import hang, whoami

    assert hang.enqueue().info().record.options.timeout_ms == 500
    plain = whoami.enqueue()
    assert plain.info().record.options.timeout_ms is None
    raw = papp.redis.hget(papp.queue_keys("default").jobs, plain.id)
    # The default options are stored as "" (record version 3), read as the defaults.
    assert raw is not None and raw.split(b"\x1f")[12] == b""
    default = JobOptions(defaults.MAX_ATTEMPTS, 60_000, 3_600_000, 604_800_000)
    assert plain.info().record.options == default
    lifted = hang.options(timeout=float("inf")).enqueue()
    assert lifted.info().record.options.timeout_ms is None
    assert JobOptions.decode("3,1000,10,-1,2500") == JobOptions(3, 1000, 10, -1, 2500)


def test_a_job_whose_child_a_ctrl_c_killed_as_it_started_runs_in_a_new_one(
    papp: Scheduler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C on a terminal signals the whole process group. A process-pool
    child ignores SIGINT once its code runs, but one still starting (spawned
    for a job, e.g. the worker's first) dies of it, before the job ran: the
    job goes to a new child. Before, it failed ("exited with code -2"),
    charged an attempt, where a thread pool finished it within the grace."""
    import queue

    from scheduler.backend.record import JobOptions
    from scheduler.worker.children import ProcessRunner
    from scheduler.worker.execution import LeasedJob, Outcome
    from tests.apps.procapp import whoami

    marker = tmp_path / "interrupted"
    monkeypatch.setenv("SCHEDULER_TEST_SIGINT_ONCE", str(marker))
    marker.touch()  # not this process
    from tests.apps.sigint_loader import load

    marker.unlink()  # the first child to import the module is interrupted
    done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    runner = ProcessRunner("tests.apps.procapp:app", 1, lambda _j, o: done.put(o), load)
    options = JobOptions(1, 1000, 1000, -1)
    try:
        runner.submit(LeasedJob("default", "j", "1", whoami.name, "[[], {}]", 1, options, 1.0, 0))
        outcome = done.get(timeout=60)
    finally:
        runner.shutdown()
    assert marker.exists()  # a child was interrupted
    assert outcome.ok, outcome
    assert int(outcome.text) != os.getpid() and runner.replaced == 1


def test_a_child_stopped_while_it_starts_finishes_start_up_and_shuts_down(
    papp: Scheduler,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A SIGTERM that reaches a process-pool child while it imports the app
    (a child started as its worker stops) waits for the start-up hooks --
    one of procapp's is async, on the child's event loop -- then the
    shutdown hooks run and the child exits 0 with nothing on stderr. Before,
    the child exited at once: no shutdown hooks, and a SIGTERM landing in
    the async hook left "Exception ignored ... Traceback" behind."""
    import multiprocessing

    from scheduler.worker.execution import child_main
    from tests.apps.sigterm_loader import load_after_sigterm

    monkeypatch.setenv("SCHEDULER_TEST_SHUTDOWN_DIR", str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(
        target=child_main, args=(theirs, load_after_sigterm, "tests.apps.procapp:app")
    )
    child.start()
    theirs.close()
    child.join(60)
    ours.close()
    assert child.exitcode == 0
    assert (tmp_path / str(child.pid)).exists(), "the shutdown hooks did not run"
    err = capfd.readouterr().err
    assert "Traceback" not in err and "never awaited" not in err, err
