"""At 80 columns, `status`/`top` and `jobs list` keep ids, names and ages whole."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from rich.console import Console

from scheduler import Scheduler
from scheduler.admin import Overview, QueueStatus
from scheduler.cli import cli
from scheduler.cli.status import render_overview
from scheduler.devserver import DevServer


def _status(name: str, paused: bool, age: float | None) -> QueueStatus:
    return QueueStatus(
        queue=name,
        ready=12345,
        delayed=120,
        leased=64,
        dead=7,
        done=999,
        paused=paused,
        aging=0.0,
        oldest_ready_age=age,
        oldest_ready_exact=True,
        jobs_per_s=123.45,
        workers=12,
        totals={"succeeded": 1234567},
    )


def test_status_at_80_columns_keeps_names_and_ages_whole() -> None:
    names = ["emails-transactional-high", "reports.nightly:v2"]
    view = Overview(
        server_time=datetime.now(UTC),
        queues=[_status(names[0], False, 3725.0), _status(names[1], True, 259200.0)],
        workers=[],
    )
    out = Console(width=80, record=True)
    out.print(render_overview(view))
    text = out.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for needle in (*names, "1h02m", "3d00h", "paused", "12345"):
        assert needle in text, text
    wide = Console(width=200, record=True)
    wide.print(render_overview(view))
    assert "1234567" in wide.export_text()  # every column when there is room


def test_jobs_list_at_80_columns_keeps_ids_whole(
    monkeypatch: pytest.MonkeyPatch, real_app: Scheduler, redis_server: DevServer
) -> None:
    app = Scheduler(real_app.redis, prefix="scheduler")
    ids = [
        app.enqueue(
            "some.module.long_task_name", queue="q", job_id=f"job-with-a-long-id-{i:04d}"
        ).id
        for i in range(3)
    ]
    monkeypatch.setattr("scheduler.cli.jobs.console", lambda: Console(width=80))
    result = CliRunner().invoke(
        cli, ["--url", redis_server.url, "--prefix", "scheduler", "jobs", "list", "-q", "q"]
    )
    assert result.exit_code == 0, result.output
    for job_id in ids:
        assert job_id in result.output, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
