"""``scheduler queue limit``, ``scheduler tasks`` and the limit/capacity notes
of ``scheduler status`` (in-process CLI on the real server)."""

from __future__ import annotations

from scheduler import Scheduler
from tests.helpers import running, wait_until
from tests.test_cli_common import Run, as_json, capp, lease_all, one_line_error, run

__all__ = ["capp", "run"]  # fixtures


def test_queue_limit_sets_shows_and_refuses(run: Run, capp: Scheduler) -> None:
    # A queue never used is refused unless --create, as by every `queue ...`
    # command (a typo'd name was registered: a queue nothing serves).
    one_line_error(run("queue", "limit", "q", "--concurrency", "4"), 1, "never used", "--create")
    assert "q" not in capp.queue_names() and capp.backend.queue_limits("q").empty
    created = run("queue", "limit", "q", "--concurrency", "4", "--rate", "100/m", "--create")
    data = as_json(run("queue", "limit", "q", "--json"))
    assert created.exit_code == 0 and "q" in capp.queue_names()
    assert data["concurrency"] == 4 and data["rate"] == {"count": 100, "period_s": 60.0}
    data = as_json(run("queue", "limit", "q", "--task", "m:f", "--concurrency", "1", "--json"))
    assert data["tasks"] == {"m:f": {"concurrency": 1, "rate": None}}
    shown = run("queue", "limit", "q")
    assert "concurrency 4, rate 100/m; task m:f: concurrency 1" in shown.stdout
    for bad in (["--rate", "lots"], ["--concurrency", "-2"], ["--concurrency", "x"]):
        result = run("queue", "limit", "q2", *bad)
        assert result.exit_code != 0
    assert capp.backend.queue_limits("q2").empty
    status = as_json(run("status", "--json"))
    assert status["limits"]["q"]["concurrency"] == 4
    assert "limits of q: concurrency 4" in run("status").stdout
    data = as_json(run("queue", "limit", "q", "--rate", "none", "--json"))
    assert data["rate"] is None


def test_tasks_shows_learned_run_times(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f", queue="q")
    capp.enqueue("m:f", queue="q")
    qk = capp.queue_keys("q")
    leased = lease_all(capp, "q", 2)
    capp.scripts.start(qk, leased)
    capp.scripts.complete(qk, [(i, t, "null") for i, t in leased])
    [row] = as_json(run("tasks", "--json"))["tasks"]
    assert row["queue"] == "q" and row["task"] == "m:f" and row["runs"] == 2
    assert row["mean_s"] >= 0 and row["sd_s"] >= 0
    assert "m:f" in run("tasks").stdout


def test_status_reports_a_job_too_big_for_every_worker(run: Run, capp: Scheduler) -> None:
    big = capp.enqueue("m:f", queue="q", resource=16)
    with running(capp, queues=["q"], capacity=8):
        wait_until(lambda: as_json(run("status", "--json"))["workers"] == 1)
        data = as_json(run("status", "--json"))
        human = run("status").stdout
    assert data["oversized"] == [
        {"queue": "q", "id": big.id, "resource": 16.0, "largest_capacity": 8.0}
    ]
    assert f"job {big.id} in q needs 16 units" in human.replace("\n", " ")


def test_worker_refuses_a_bad_capacity() -> None:
    import subprocess
    import sys

    for bad in ("-1", "0", "nan", "inf"):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scheduler",
                "worker",
                "tests.apps.procapp:app",
                "--capacity",
                bad,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"SCHEDULER_TEST_URL": "redis://127.0.0.1:1/0", "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 2 and "capacity must be a finite number > 0" in proc.stderr
