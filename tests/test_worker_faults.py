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
from tests.helpers import start_worker, stop, wait_until, whoami_pool

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
    child ignores SIGINT once its code runs, but one still starting (the
    pool's first, or one spawned for a job) dies of it, before the job ran:
    the job goes to a new child. Before, it failed ("exited with code -2"),
    charged an attempt, where a thread pool finished it within the grace."""

    marker = tmp_path / "interrupted"
    monkeypatch.setenv("SCHEDULER_TEST_SIGINT_ONCE", str(marker))
    marker.touch()  # not this process
    from tests.apps.sigint_loader import load

    marker.unlink()  # the first child to import the module is interrupted
    with whoami_pool(1, load) as (runner, run):
        outcome = run()
    assert marker.exists()  # a child was interrupted
    assert outcome.ok, outcome
    # Died before it was ready (READY): the job never went to it; its slot
    # replaced it when the job came, without charging it (not counted).
    assert int(outcome.text) != os.getpid() and runner.replaced == 0


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

    from scheduler.worker.child import child_main
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


def gone(pid: int) -> bool:
    """No process ``pid`` runs: none exists, or it is a zombie (an orphan
    is reaped by whatever adopts it, perhaps never in a container)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_child_whose_worker_was_killed_abandons_its_job(papp: Scheduler, tmp_path: Path) -> None:
    """kill -9 of a worker while its process-pool child runs a job: the
    child exits at once, leaving the job to another worker once the lease
    expires. Before, the orphan ran the job to its end -- concurrently with
    the rescuer's run -- then died of a BrokenPipeError traceback."""
    from tests.apps.procapp import gated

    started, release, finished = tmp_path / "started", tmp_path / "release", tmp_path / "done"
    finished.mkdir()
    job = gated.options(lease=1.0, max_attempts=2).enqueue(
        str(started), str(release), str(finished)
    )
    victim = start_worker("--pool", "process", "-c", "1", role="victim")
    orphan = 0
    try:
        wait_until(started.exists, timeout=60)
        orphan = int(started.read_text())
        # Started (reported): the rescuer's run is the second attempt.
        wait_until(lambda: job.info().started_at is not None, timeout=30)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        wait_until(lambda: gone(orphan), timeout=30)
        release.touch()
    finally:
        if orphan and not gone(orphan):  # it holds the worker's stdout open
            os.kill(orphan, signal.SIGKILL)
        out = stop(victim)
    assert "Traceback" not in out and f"process {orphan} abandons job {job.id}" in out, out
    rescuer = start_worker("--pool", "process", "-c", "1")
    try:
        again = job.result(timeout=60)
    finally:
        out += stop(rescuer)
    assert again != orphan, out
    assert sorted(p.name for p in finished.iterdir()) == [str(again)], out
    assert job.info().attempts == 2, out


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_an_idle_child_exits_with_its_killed_worker(papp: Scheduler) -> None:
    from tests.apps.procapp import whoami

    worker = start_worker("--pool", "process", "-c", "1", role="victim")
    child = 0
    try:
        child = whoami.enqueue().result(timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        wait_until(lambda: gone(child), timeout=30)
    finally:
        if child and not gone(child):
            os.kill(child, signal.SIGKILL)
        out = stop(worker)
    assert "Traceback" not in out, out
