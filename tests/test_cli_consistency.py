"""Issue 17: metrics that survive dead workers, and a CLI that agrees with
itself -- the standalone exporter scraped over real HTTP with no worker
running, the example alert rules, one state vocabulary, times with their
zone, newest-first finished lists, ``enqueue --app``, failure rate and
running-vs-buffered in ``status``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from scheduler import Scheduler
from scheduler.devserver import DevServer
from scheduler.metrics import QUEUE_METRIC_NAMES
from tests.helpers import scrape, serving_metrics, wait_until
from tests.test_cli_common import PREFIX, Run, as_json, lease_all, make_dead, run

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "docs" / "alerts.yml"


@pytest.fixture
def capp(real_redis: redis.Redis) -> Scheduler:
    return Scheduler(real_redis, prefix=PREFIX)


__all__ = ["run"]  # the CLI runner fixture, shared with test_cli_common


# -- the standalone exporter -------------------------------------------------


def test_exporter_reports_queues_with_no_worker_running(
    redis_server: DevServer, capp: Scheduler
) -> None:
    capp.enqueue("m:f", queue="emails")
    capp.enqueue("m:f", queue="emails")
    make_dead(capp, 1, queue="reports")
    env = {"REDIS_URL": redis_server.url, "SCHEDULER_PREFIX": PREFIX, "PATH": ""}
    # loopback by default: the announced URL is on 127.0.0.1
    with serving_metrics("metrics", "--port", "0", "--interval", "0.2", env=env) as url:
        text = scrape(url)
        assert 'scheduler_queue_jobs{queue="emails",state="ready"} 2.0' in text
        assert 'scheduler_queue_jobs{queue="reports",state="dead"} 1.0' in text
        assert 'scheduler_queue_events_total{event="dead",queue="reports"} 1.0' in text
        assert "scheduler_workers_live 0.0" in text
        age = re.search(r'scheduler_queue_oldest_ready_age_seconds\{queue="emails"\} (\S+)', text)
        assert age and float(age.group(1)) >= 0
        # A queue registered after the start shows up at the next refresh.
        capp.enqueue("m:f", queue="late")
        wait_until(lambda: 'queue="late",state="ready"} 1.0' in scrape(url))


# -- the example alert rules ---------------------------------------------------


def _rule_metric_names() -> set[str]:
    lines = [line for line in ALERTS.read_text().splitlines() if not line.lstrip().startswith("#")]
    return set(re.findall(r"\bscheduler_[a-z_]+\b", "\n".join(lines)))


def test_alert_rules_use_only_the_exporters_metrics() -> None:
    names = _rule_metric_names()
    assert {"scheduler_queue_oldest_ready_age_seconds", "scheduler_workers_live"} <= names
    assert names <= set(QUEUE_METRIC_NAMES), names - set(QUEUE_METRIC_NAMES)


_RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'scheduler_queue_oldest_ready_age_seconds{{queue="emails"}}'
        values: '0 60 1200x20'
      - series: 'scheduler_queue_jobs{{queue="emails",state="ready"}}'
        values: '5x22'
      - series: 'scheduler_workers_live'
        values: '0x22'
      - series: 'scheduler_queue_events_total{{queue="emails",event="dead"}}'
        values: '0+10x22'
      - series: 'scheduler_queue_refresh_timestamp_seconds'
        values: '0+60x22'
    alert_rule_test:
      - eval_time: 20m
        alertname: SchedulerQueueStuck
        exp_alerts:
          - exp_labels: {{severity: page, queue: emails}}
            exp_annotations:
              summary: "queue emails: oldest ready job waited 20m 0s"
      - eval_time: 20m
        alertname: SchedulerDeadLetterSpike
        exp_alerts:
          - exp_labels: {{severity: warning, queue: emails}}
            exp_annotations:
              summary: "queue emails: 10 dead jobs per minute"
      - eval_time: 20m
        alertname: SchedulerNoLiveWorkers
        exp_alerts:
          - exp_labels: {{severity: page}}
            exp_annotations:
              summary: "no live scheduler workers while jobs are ready"
      - eval_time: 20m
        alertname: SchedulerExporterStale
        exp_alerts: []
"""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_alert_rules_fire_under_promtool(tmp_path: Path) -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(_RULE_TESTS.format(rules=json.dumps(str(ALERTS))))
    result = subprocess.run(
        ["promtool", "test", "rules", str(spec)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- one state vocabulary, newest first, times with their zone ---------------


def test_jobs_list_accepts_done_and_lists_finished_jobs_newest_first(
    run: Run, capp: Scheduler
) -> None:
    for _ in range(3):
        capp.enqueue("m:f")
    ids = []
    for job_id, token in lease_all(capp, "default", 3):  # dead one after another
        before = capp.backend.server_time_ms()
        capp.scripts.fail(capp.queue_keys("default"), [(job_id, token, '{"error": "x"}', -1)])
        ids.append(job_id)
        wait_until(lambda before=before: capp.backend.server_time_ms() > before + 1)
    newest = as_json(run("jobs", "list", "-q", "default", "-s", "dead", "--json"))
    assert [j["id"] for j in newest["jobs"]] == ids[::-1]
    oldest = as_json(run("jobs", "list", "-q", "default", "-s", "dead", "--oldest", "--json"))
    assert [j["id"] for j in oldest["jobs"]] == ids
    capp.enqueue("m:f", job_id="c1").cancel(actor="t")
    capp.enqueue("m:f", job_id="s1")
    ((job_id, token),) = lease_all(capp, "default", 1)
    capp.scripts.complete(capp.queue_keys("default"), [(job_id, token, "1")])
    done = as_json(run("jobs", "list", "-q", "default", "-s", "done", "--json"))
    assert {(j["id"], j["state"]) for j in done["jobs"]} == {
        ("c1", "cancelled"),
        (job_id, "succeeded"),
    }
    status = as_json(run("status", "--json"))["queues"][0]
    assert status["done"] == len(done["jobs"])  # the same word, the same jobs


def test_times_are_shown_with_their_zone(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f", job_id="t1", delay=3600)
    local = run("job", "show", "t1")
    assert local.exit_code == 0
    assert re.search(
        r"ETA / ready at\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d", local.stdout
    )
    for args in (("--utc", "job", "show", "t1"), ("job", "show", "t1", "--utc")):
        utc = run(*args)
        assert utc.exit_code == 0
        assert re.search(r"ETA / ready at\s+\S+ \S+ UTC \(in ", utc.stdout), utc.stdout


# -- enqueue resolves the task's declared defaults ---------------------------


def test_enqueue_with_app_applies_the_tasks_declared_defaults(
    redis_server: DevServer, real_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_TEST_URL", redis_server.url)
    monkeypatch.setenv("SCHEDULER_TEST_PREFIX", PREFIX)
    task = "tests.apps.procapp:hold"  # declared with lease=1.0, max_attempts=3
    env = {"REDIS_URL": redis_server.url, "SCHEDULER_PREFIX": PREFIX}
    base = [sys.executable, "-m", "scheduler", "enqueue"]
    run_env = {**env, "SCHEDULER_TEST_URL": redis_server.url, "SCHEDULER_TEST_PREFIX": PREFIX}

    def enqueue(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], cwd=ROOT, env=run_env, capture_output=True, text=True, check=False
        )

    checked = enqueue("--app", "tests.apps.procapp:app", task, "--args", '["x"]', "--json")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""
    app = Scheduler(real_redis, prefix=PREFIX)
    rec = app.backend.read_record("default", json.loads(checked.stdout)["id"])
    assert rec is not None and (rec.options.max_attempts, rec.options.lease_ms) == (3, 1000)

    unchecked = enqueue(task, "--args", '["x"]', "--json")
    assert unchecked.returncode == 0, unchecked.stderr
    assert "warning: task 'tests.apps.procapp:hold' was not checked" in unchecked.stderr
    rec = app.backend.read_record("default", json.loads(unchecked.stdout)["id"])
    assert rec is not None and rec.options.lease_ms != 1000  # the library's defaults

    typo = enqueue("--app", "tests.apps.procapp:app", "tests.apps.procapp:hodl")
    assert typo.returncode == 2 and "has no task 'tests.apps.procapp:hodl'" in typo.stderr


# -- status: failure rate, running vs buffered ------------------------------


def test_status_shows_failure_rate_and_running_vs_buffered(run: Run, capp: Scheduler) -> None:
    for _ in range(4):
        capp.enqueue("m:f", max_attempts=1)
    leases = lease_all(capp, "default", 4)
    qk = capp.queue_keys("default")
    capp.scripts.complete(qk, [(j, t, "1") for j, t in leases[:3]])
    capp.scripts.fail(qk, [(leases[3][0], leases[3][1], '{"error": "x"}', -1)])
    fields = {"queues": "default", "concurrency": "2", "inflight": "5", "running": "2"}
    capp.backend.publish_worker("w-1", fields, time.time())
    view = as_json(run("status", "--json"))
    assert view["queues"][0]["failure_rate"] == 0.25
    assert (view["running"], view["buffered"]) == (2, 3)
    text = run("status").stdout
    assert "25%" in text and "running 2 job(s), 3 more leased and buffered" in text
    workers = as_json(run("workers", "--json"))["workers"][0]
    assert (workers["running"], workers["buffered"]) == (2, 3)
