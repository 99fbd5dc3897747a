"""What a worker process logs: levels by outcome, one INFO line per job, and
``--log-format json`` (one object per line with the job's fields)."""

from __future__ import annotations

import json
import signal

import pytest

from scheduler import Scheduler
from scheduler.errors import JobFailedError
from tests.helpers import start_worker, stop

pytestmark = pytest.mark.slow


def run_jobs(papp: Scheduler, *args: str) -> str:
    from tests.apps.procapp import boom, whoami

    worker = start_worker("--concurrency", "1", *args)
    try:
        ok = whoami.enqueue()
        assert isinstance(ok.result(timeout=60), int)
        bad = boom.enqueue("kaput")
        with pytest.raises(JobFailedError):
            bad.result(timeout=60)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        out = stop(worker)
    return out


def test_json_log_lines_carry_the_job_fields(papp: Scheduler) -> None:
    out = run_jobs(papp, "--log-format", "json")
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    jobs = [r for r in records if "job_id" in r]
    by_outcome = {r["outcome"]: r for r in jobs}
    assert set(by_outcome) == {"succeeded", "retried", "dead"}, out
    for r in jobs:
        assert {"job_id", "task", "queue", "attempt", "outcome", "duration", "level"} <= set(r)
        assert r["queue"] == "default" and r["duration"] >= 0
    assert by_outcome["succeeded"]["level"] == "INFO"
    assert by_outcome["retried"]["level"] == "WARNING" and by_outcome["retried"]["attempt"] == 1
    dead = by_outcome["dead"]
    assert dead["level"] == "ERROR" and dead["attempt"] == 2
    assert "Traceback" in dead["message"] and "ValueError: kaput" in dead["message"]


def test_text_logs_one_info_line_per_job_and_failures_above_info(papp: Scheduler) -> None:
    out = run_jobs(papp)
    job_info = [line for line in out.splitlines() if " INFO " in line and " job " in line]
    assert len(job_info) == 1 and "succeeded" in job_info[0], out  # started lines are DEBUG
    assert any(" WARNING " in line and "will retry" in line for line in out.splitlines()), out
    dead = next(line for line in out.splitlines() if " ERROR " in line and ", dead:" in line)
    assert "ValueError: kaput" in dead
    assert "Traceback (most recent call last)" in out.split(dead, 1)[1]


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_tasks_own_logs_follow_the_workers_log_settings(papp: Scheduler, pool: str) -> None:
    """A task's logging.info(...) comes out as the worker's other lines do
    (here JSON, at INFO), in process-pool children too. Before, a spawned
    child had no logging set up: INFO lines were lost and WARNING ones came
    out as bare text among the JSON lines."""
    from tests.apps.procapp import chatty

    worker = start_worker("--pool", pool, "-c", "1", "--log-format", "json")
    try:
        pid = chatty.enqueue("hello").result(timeout=60)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        out = stop(worker)
    records = [json.loads(line) for line in out.splitlines() if line.strip()]  # all JSON
    said = [r for r in records if r["name"] == "tests.apps.procapp"]
    assert [(r["level"], r["message"]) for r in said] == [("INFO", "task says hello")], out
    assert (pid == worker.pid) is (pool == "thread")
