"""``scheduler status``, ``top``, ``queue pause|resume|purge`` and bulk ``retry``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.console import Console

from scheduler import JobSpec, JobState, Scheduler
from scheduler.admin import Overview, QueueStatus, WorkerInfo
from scheduler.cli.queues import RETRY_BATCH
from scheduler.cli.status import render_overview
from tests.helpers import running, wait_until
from tests.test_cli_common import (
    Run,
    as_json,
    capp,
    lease_all,
    make_dead,
    one_line_error,
    run,
)

__all__ = ["capp", "run"]  # fixtures


def test_status_counts_age_rate_workers(run: Run, capp: Scheduler) -> None:
    @capp.task(queue="busy")
    def noop() -> None: ...

    make_dead(capp, 2, queue="busy")
    capp.enqueue("m:f", queue="busy")
    capp.enqueue("m:f", queue="busy", delay=3600)
    capp.enqueue("m:f", queue="idle")
    capp.pause("idle")
    leased = lease_all(capp, "busy", 1)
    capp.scripts.complete(capp.queue_keys("busy"), [(i, t, "null") for i, t in leased])
    capp.enqueue("m:f", queue="busy", job_id="waiting")
    data = as_json(run("status", "--json"))
    assert data["server_time"] and data["workers"] == 0
    busy, idle = data["queues"]
    assert busy["queue"] == "busy" and idle["queue"] == "idle"
    counts = [busy[k] for k in ("ready", "delayed", "leased", "dead", "done")]
    assert counts == [1, 1, 0, 2, 1]
    assert busy["totals"]["succeeded"] == 1 and busy["totals"]["dead"] == 2
    assert busy["totals"]["enqueued"] == 5 and busy["totals"]["failed"] == 2
    assert busy["jobs_per_s"] == 3 / 60  # 1 success + 2 failures in the last minute
    assert busy["oldest_ready_age_s"] >= 0 and busy["oldest_ready_exact"] is True
    assert busy["paused"] is False and idle["paused"] is True
    assert idle["ready"] == 1 and idle["jobs_per_s"] == 0
    only = as_json(run("status", "-q", "idle", "--json"))["queues"]
    assert [q["queue"] for q in only] == ["idle"]

    with running(capp, queues=["busy"], concurrency=2):
        wait_until(lambda: as_json(run("status", "--json"))["workers"] == 1)
        data = as_json(run("status", "--json"))
        assert [q["workers"] for q in data["queues"]] == [1, 0]
        human = run("status")
    assert human.exit_code == 0
    assert "busy" in human.stdout and "paused" in human.stdout and "1 live worker" in human.stdout


def test_status_of_nothing_and_bad_queue(run: Run, capp: Scheduler) -> None:
    assert as_json(run("status", "--json"))["queues"] == []
    assert "(no queues)" in run("status").stdout
    one_line_error(run("status", "-q", "a b"), 2, "invalid queue name")


def test_render_overview_is_pure() -> None:
    view = Overview(
        server_time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        queues=[
            QueueStatus(
                "emails", 12, 3, 2, 1, 40, True, 0.0, 75.0, False, 0.5, 2, {"succeeded": 99}
            ),
        ],
        workers=[
            WorkerInfo("w1", "h", 1, ("emails",), 4, "thread", 2, 10, 0.0, None),
            WorkerInfo("w2", "h", 2, ("emails",), 4, "thread", 0, 10, 0.0, None),
        ],
    )
    out = Console(width=160, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(render_overview(view))
    text = out.export_text()
    row = next(line for line in text.splitlines() if "emails" in line)
    for cell in ("paused", "12", "40", "99", ">=1m15s", "0.50"):
        assert cell in row, cell
    assert "2 live worker(s)" in text and "2030-01-02 03:04:05" in text


def test_top_renders_and_stops(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f", queue="q1")
    result = run("top", "--iterations", "2", "--interval", "0.1")
    assert result.exit_code == 0, result.output
    assert "q1" in result.stdout


def test_pause_and_resume(run: Run, capp: Scheduler) -> None:
    job = capp.enqueue("m:f", job_id="p1")
    assert run("queue", "pause", "default").exit_code == 0
    assert as_json(run("status", "--json"))["queues"][0]["paused"] is True
    assert capp.scripts.lease(capp.queue_keys("default"), 1, "w", "r1").paused
    assert as_json(run("queue", "resume", "default", "--json")) == {
        "queue": "default",
        "paused": False,
        "changed": True,
    }
    assert lease_all(capp, "default", 1)[0][0] == "p1"
    assert job.status is JobState.LEASED
    one_line_error(run("queue", "pause", "no{pe"), 2, "invalid queue name")


def test_purge_asks_first(run: Run, capp: Scheduler) -> None:
    make_dead(capp, 3)
    capp.enqueue("m:f", job_id="keep")
    declined = run("queue", "purge", "default", "--state", "dead", input="n\n")
    assert declined.exit_code == 1 and "Delete 3 dead job(s)" in declined.output
    # Declining is no bug: one plain error line (it said "unexpected Abort").
    assert "Error: not confirmed: nothing deleted" in declined.stderr
    assert "unexpected" not in declined.output
    assert capp.redis.zcard(capp.queue_keys("default").dead) == 3
    no_input = run("queue", "purge", "default", "--state", "dead")  # EOF: not confirmed
    assert no_input.exit_code == 1 and "unexpected" not in no_input.output
    accepted = run("queue", "purge", "default", "--state", "dead", input="y\n")
    assert accepted.exit_code == 0 and "deleted 3 dead job(s)" in accepted.stdout
    assert capp.redis.zcard(capp.queue_keys("default").dead) == 0
    assert capp.job("keep").status is JobState.READY
    empty = run("queue", "purge", "default", "--state", "dead", "--json")
    assert empty.exit_code == 1  # nothing to do
    assert json.loads(empty.stdout) == {"queue": "default", "state": "dead", "deleted": 0}
    assert run("queue", "purge", "default").exit_code == 2  # --state is required


def test_purge_loops_over_large_sets(run: Run, capp: Scheduler) -> None:
    n = 1234  # more than one purge script call (500 each)
    capp.enqueue_many([JobSpec("m:f", (i,)) for i in range(n)])
    result = as_json(run("queue", "purge", "default", "--state", "ready", "--yes", "--json"))
    assert result["deleted"] == n
    assert capp.redis.hlen(capp.queue_keys("default").jobs) == 0


def test_bulk_retry(run: Run, capp: Scheduler) -> None:
    n = RETRY_BATCH * 2 + 17  # several script calls
    dead = make_dead(capp, n, task="m:bulk")
    make_dead(capp, 3, task="m:other", queue="default")
    one_line_error(run("retry", "-q", "default"), 2, "--all or --task")
    one_line_error(run("retry", "-q", "default", "--all", "--task", "m:x"), 2, "--all or --task")
    one_line_error(run("retry", "-q", "default", "--task", "bad task"), 2, "invalid task name")
    data = as_json(run("retry", "-q", "default", "--task", "m:bulk", "--json"))
    assert data == {
        "queue": "default",
        "state": "dead",
        "task": "m:bulk",
        "matched": n,
        "requeued": n,
        "skipped": 0,
        "gone": 0,
    }
    assert capp.job(dead[0]).status is JobState.READY
    assert capp.redis.zcard(capp.queue_keys("default").dead) == 3
    result = run("retry", "-q", "default", "--all")
    assert result.exit_code == 0 and "requeued 3 of 3 dead job(s)" in result.stdout
    assert capp.redis.zcard(capp.queue_keys("default").dead) == 0
    # other states: cancelled jobs
    capp.enqueue("m:f", job_id="c1").cancel()
    data = as_json(run("retry", "-q", "default", "-s", "cancelled", "--all", "--json"))
    assert data["requeued"] == 1 and capp.job("c1").status is JobState.READY
