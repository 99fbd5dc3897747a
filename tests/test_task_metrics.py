"""Issue 14: the learned run times in Prometheus -- per queue and task runs,
mean, standard deviation, cv and last run, scraped over real HTTP from the
standalone exporter (``scheduler metrics``, a subprocess, no worker) and from
a worker's metrics server, and compared with what ``Backend.task_stats``
reads (the statistics ``lua/complete.lua`` kept)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import redis

from scheduler import JobState, Scheduler, Worker, current_job
from scheduler.devserver import DevServer
from scheduler.learning import TaskStats
from scheduler.metrics import TASK_METRIC_NAMES, TaskStatsCollector, start_metrics_server
from tests.helpers import running, scrape, serving_metrics, wait_until

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "tm"


def quick() -> None:
    pass


def measured(app: Scheduler) -> None:
    """Run naps of 10, 30 and 50 ms of ``tm:nap`` in queue ``emails`` and one
    ``tm:quick`` in ``reports`` on a worker thread, so the recorded spread is
    real.

    A run's recorded duration is server time from the round trip that
    reports its start to the one that reports its success (lua/complete.lua),
    not the task's own time: naps running side by side whose successes a
    late dispatcher reports in one round trip all record the same duration,
    and a nap over before its start is reported records 0. So the naps run
    one at a time (concurrency 1), each only once its start is on record:
    each recorded duration is then at least its nap.
    """

    def nap(ms: int) -> None:
        job = current_job()
        wait_until(lambda: app.job(job.id, job.queue).info().started_at is not None)
        threading.Event().wait(ms / 1000)

    if "tm:nap" not in app.tasks:
        app.task(name="tm:nap")(nap)
        app.task(name="tm:quick")(quick)
    jobs = [app.enqueue("tm:nap", [ms], queue="emails") for ms in (10, 30, 50)]
    jobs.append(app.enqueue("tm:quick", queue="reports"))
    with running(app, queues=["emails", "reports"], concurrency=1):
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=20)


def series(text: str, name: str, queue: str, task: str) -> float:
    found = re.search(rf'^{name}\{{queue="{queue}",task="{task}"\}} (\S+)$', text, re.M)
    assert found, f"{name} for {queue}/{task} not in the scrape"
    return float(found.group(1))


def check_scrape(text: str, queue: str, stats: TaskStats) -> None:
    """Every task series of ``stats`` in ``text``, exactly (the exposition
    prints floats with repr, so the parsed value is the same float)."""
    expected = {
        "scheduler_task_runs_total": float(stats.runs),
        "scheduler_task_duration_mean_seconds": stats.mean_ms / 1000,
        "scheduler_task_duration_stddev_seconds": stats.sd_ms / 1000,
        "scheduler_task_duration_cv": stats.cv,
        "scheduler_task_last_duration_seconds": stats.last_duration_ms / 1000,
        "scheduler_task_last_finished_timestamp_seconds": stats.last_ms / 1000,
    }
    assert set(expected) == set(TASK_METRIC_NAMES)
    for name, value in expected.items():
        assert series(text, name, queue, stats.task) == value, name


def test_exporter_serves_task_statistics(redis_server: DevServer, real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix=PREFIX)
    measured(app)
    [nap] = app.backend.task_stats("emails")
    [quick] = app.backend.task_stats("reports")
    assert nap.runs == 3 and nap.sd_ms > 0 and nap.mean_ms >= 30
    env = {"REDIS_URL": redis_server.url, "SCHEDULER_PREFIX": PREFIX, "PATH": ""}
    with serving_metrics("metrics", "--port", "0", "--interval", "0.2", env=env) as url:
        text = scrape(url)
        check_scrape(text, "emails", nap)
        check_scrape(text, "reports", quick)
        assert "# TYPE scheduler_task_runs_total counter" in text
        # A further run shows up at the next refresh.
        measured(app)
        wait_until(
            lambda: series(scrape(url), "scheduler_task_runs_total", "emails", "tm:nap") == 6
        )


def test_worker_metrics_server_serves_its_queues_task_statistics(real_app: Scheduler) -> None:
    measured(real_app)
    worker = Worker(real_app, ["emails"])
    server = start_metrics_server(worker, 0, addr="127.0.0.1", interval=60)
    try:
        text = scrape(f"http://127.0.0.1:{server.port}/metrics")
        [nap] = real_app.backend.task_stats("emails")
        check_scrape(text, "emails", nap)
        assert 'queue="reports"' not in text  # only the queues the worker serves
    finally:
        server.close()


def test_collector_skips_a_damaged_row(real_app: Scheduler) -> None:
    measured(real_app)
    real_app.backend.client.hset(real_app.queue_keys("emails").taskstats, "tm:bad", "1,x")
    collector = TaskStatsCollector(real_app.backend, None, interval=60)
    collector.refresh()
    tasks = {
        (s.labels["queue"], s.labels["task"])
        for family in collector.collect()
        for s in family.samples
    }
    assert tasks == {("emails", "tm:nap"), ("reports", "tm:quick")}
