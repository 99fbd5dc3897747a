"""Prometheus metrics of a worker: the observer hook, queue depth, the HTTP endpoint."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler import Backoff, Scheduler, Worker
from scheduler.devserver import DevServer
from scheduler.metrics import QueueCollector, WorkerMetrics, start_metrics_server
from scheduler.worker.execution import LeasedJob
from tests.helpers import running, scrape, serving_metrics, wait_until

ROOT = Path(__file__).resolve().parent.parent
FAST = Backoff(base=0.01, maximum=0.02)


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_worker_metrics_count_outcomes_and_durations(real_app: Scheduler) -> None:
    app = real_app

    @app.task(name="t:ok")
    def ok() -> int:
        return 1

    @app.task(name="t:bad", max_attempts=2, backoff=FAST)
    def bad() -> None:
        raise ValueError("no")

    metrics = WorkerMetrics()
    jobs = [ok.enqueue() for _ in range(3)]
    doomed = bad.enqueue()
    with running(app, observer=metrics, concurrency=2):
        for job in jobs:
            job.result(timeout=10)
        wait_until(
            lambda: (
                value(
                    metrics,
                    "scheduler_jobs_finished_total",
                    queue="default",
                    task="t:bad",
                    outcome="dead",
                )
                == 1
            )
        )
    assert doomed.info().state.value == "dead"
    labels = {"queue": "default", "task": "t:ok"}
    assert value(metrics, "scheduler_jobs_leased_total", **labels) == 3
    assert value(metrics, "scheduler_jobs_finished_total", outcome="succeeded", **labels) == 3
    assert value(metrics, "scheduler_job_duration_seconds_count", **labels) == 3
    bad_labels = {"queue": "default", "task": "t:bad"}
    assert value(metrics, "scheduler_jobs_finished_total", outcome="retried", **bad_labels) == 1
    assert value(metrics, "scheduler_jobs_leased_total", **bad_labels) == 2


def test_lease_lost_and_release_are_counted(real_app: Scheduler) -> None:
    app = real_app
    started, release = threading.Event(), threading.Event()

    @app.task(name="t:block")
    def block() -> int:
        started.set()
        release.wait(10)
        return 1

    metrics = WorkerMetrics()
    job = block.enqueue()
    with running(app, observer=metrics):
        assert started.wait(10)
        job.cancel()  # the worker's lease is now stale: its result will be refused
        release.set()
        wait_until(lambda: value(metrics, "scheduler_lease_lost_total", queue="default") == 1)
    assert (
        value(
            metrics,
            "scheduler_jobs_finished_total",
            queue="default",
            task="t:block",
            outcome="refused",
        )
        == 1
    )

    started.clear()
    release.clear()
    block.enqueue()
    worker = Worker(app, observer=metrics, grace=0.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert started.wait(10)
    worker.stop(grace=0.0)  # released at once, back to ready
    thread.join(timeout=15)
    release.set()
    assert value(metrics, "scheduler_jobs_released_total", queue="default") == 1


def test_a_failing_observer_does_not_stop_the_worker(real_app: Scheduler) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            def fail(*_args: object) -> None:
                raise RuntimeError(name)

            return fail

    @real_app.task(name="t:fine")
    def fine() -> str:
        return "fine"

    with running(real_app, observer=Broken()):
        assert fine.enqueue().result(timeout=10) == "fine"


def test_queue_collector_reads_depth_paused_and_expiries(real_app: Scheduler) -> None:
    app = real_app
    app.enqueue("m:f", queue="q", lease=0.001)
    app.enqueue("m:f", queue="q", delay=60)
    app.pause("q")
    app.resume("q")
    qk = app.queue_keys("q")
    assert len(app.scripts.lease(qk, 1, "w", "r1").jobs) == 1

    def reaped() -> bool:
        app.scripts.lease(qk, 0, "w", "maintain")  # n=0: only promote / reap expired leases
        return int(app.redis.hget(qk.stats, "expired") or 0) == 1

    wait_until(reaped)
    app.pause("q")
    collector = QueueCollector(app.backend, ["q"], interval=60)
    collector.refresh()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }
    assert samples[("scheduler_queue_jobs", (("queue", "q"), ("state", "ready")))] == 1
    assert samples[("scheduler_queue_jobs", (("queue", "q"), ("state", "delayed")))] == 1
    assert samples[("scheduler_queue_paused", (("queue", "q"),))] == 1
    assert samples[("scheduler_queue_lease_expired_total", (("queue", "q"),))] == 1
    key = ("scheduler_queue_events_total", (("event", "enqueued"), ("queue", "q")))
    assert samples[key] == 2


def test_metrics_endpoint(real_app: Scheduler) -> None:
    worker = Worker(real_app, ["default", "other"])
    real_app.enqueue("m:f")
    server = start_metrics_server(worker, 0, addr="127.0.0.1", interval=60)
    try:
        assert isinstance(worker.observer, WorkerMetrics)
        text = scrape(f"http://127.0.0.1:{server.port}/metrics")
        assert 'scheduler_queue_jobs{queue="default",state="ready"} 1.0' in text
        assert 'scheduler_jobs_in_flight{queue="other"} 0.0' in text
        assert "scheduler_queue_refresh_timestamp_seconds" in text
    finally:
        server.close()


@pytest.mark.slow
def test_worker_command_serves_metrics(redis_server: DevServer, real_redis: redis.Redis) -> None:
    env = {**os.environ, "SCHEDULER_TEST_URL": redis_server.url, "SCHEDULER_TEST_PREFIX": "m"}
    args = ["tests.apps.procapp:app", "--metrics-port", "0", "--metrics-addr", "127.0.0.1"]
    with serving_metrics("worker", *args, env=env) as url:  # SIGTERM: exits 0
        assert 'scheduler_queue_jobs{queue="default",state="ready"}' in scrape(url)


def test_observer_protocol_is_satisfied() -> None:
    from scheduler.worker.worker import WorkerObserver

    observer: WorkerObserver = WorkerMetrics()
    job = LeasedJob("q", "id", "1", "t", "[[],{}]", 1, None, 1.0, 0)  # type: ignore[arg-type]
    observer.on_leased(job)
    observer.on_finished(job, "succeeded", 0.5)
    observer.on_released(job)
    observer.on_lease_lost(job)
