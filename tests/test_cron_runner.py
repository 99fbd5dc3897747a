"""The cron runner in-process: misfire policies after downtime (and with no
grace: the firing due now still runs), wake-ups, precision, robustness, and a
worker running cron jobs next to delayed one-off jobs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from scheduler import Scheduler, Worker
from scheduler.backend.connection import server_time_ms
from scheduler.backend.record import JobRecord, parse_record
from scheduler.cron import CronRunner, Schedule
from scheduler.cron.runner import PREPARE_MIN_WAIT
from tests.helpers import wait_until


def jobs_of(app: Scheduler, queue: str = "default") -> dict[str, JobRecord]:
    raw = app.redis.hgetall(app.queue_keys(queue).jobs)
    records = {}
    for key, value in raw.items():
        job_id = key.decode() if isinstance(key, bytes) else str(key)
        records[job_id] = parse_record(job_id, value)
    return records


def metas(app: Scheduler, schedule_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [json.loads(r.meta) for r in jobs_of(app).values() if r.meta]
    return sorted((m for m in found if m["schedule"] == schedule_id), key=lambda m: m["fire_at"])


def as_if_down_since(app: Scheduler, s: Schedule, stored_next_ms: int) -> None:
    """Pretend the schedule was stored long ago: its next fire time is in the past."""
    app.redis.zadd(app.queue_keys(s.queue).cron, {s.id: stored_next_ms})


@pytest.mark.parametrize(
    ("policy", "grace", "expected_fires", "missed"),
    [
        ("coalesce", 10, [0], 2),  # the latest (30 s late) runs once for all three
        ("skip", 10, [], 3),  # the latest is 30 s late > grace: all skipped
        ("skip", 40, [0], 2),  # the latest is within grace: it runs
        ("catch_up", 100, [-60, 0], 1),  # 90 s and 30 s late run; 150 s late is too old
    ],
)
def test_misfire_policy_after_downtime(
    client: redis.Redis, policy: str, grace: float, expected_fires: list[int], missed: int
) -> None:
    app = Scheduler(client, prefix="t")
    now = server_time_ms(client)
    anchor = now - 30_000  # fire grid: anchor + k * 60 s; the latest due is 30 s late
    start = datetime.fromtimestamp((anchor - 3_600_000) / 1000, UTC)
    s = app.every(60, "m:f", id="p", start=start, misfire=policy, misfire_grace=grace)
    app.schedules.sync()
    as_if_down_since(app, s, anchor - 120_000)  # due: anchor-120 s, anchor-60 s, anchor
    runner = CronRunner(app, sync=False)
    wait = runner.run_once()
    assert 25 < wait <= 30
    got = metas(app, "p")
    assert [m["fire_at"] for m in got] == [anchor + 1000 * f for f in expected_fires]
    assert all(m["misfire"] == policy for m in got)
    assert [m["missed"] for m in got] == ([missed] + [0] * (len(got) - 1) if got else [])
    info = app.schedules.get("p")
    assert (info.fired, info.missed) == (len(expected_fires), missed)
    assert info.next_fire_ms == anchor + 60_000
    if got:
        assert info.last_job_id == f"cron:p:{got[-1]['fire_at']}"
    assert runner.run_once() > 25  # nothing more to do


def test_catch_up_in_batches(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    now = server_time_ms(client)
    s = app.every(1, "m:f", id="c", misfire="catch_up", misfire_grace=3600)
    app.schedules.sync()
    first = now - now % 1000 - 25_000
    as_if_down_since(app, s, first)
    runner = CronRunner(app, sync=False, batch=4)
    runner.run_once()
    fires = [m["fire_at"] for m in metas(app, "c")]
    assert fires[:26] == list(range(first, first + 26_000, 1000))  # one job per missed second
    assert runner.fired == len(fires)


def test_two_runners_racing_fire_once(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    now = server_time_ms(client)
    s = app.every(1, "m:f", id="r", misfire="catch_up", misfire_grace=3600)
    app.schedules.sync()
    as_if_down_since(app, s, now - now % 1000 - 10_000)
    one, two = CronRunner(app, sync=False, batch=1), CronRunner(app, sync=False, batch=1)
    for _ in range(12):
        one.run_once()
        two.run_once()
    assert one.fired + two.fired == len(metas(app, "r")) >= 11


def test_unreadable_schedule_does_not_block_others(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    qk = app.queue_keys("default")
    app.schedules.add(app.every(1, "m:f", id="good", declare=False))
    client.hset(qk.schedules, "junk", "not a record")
    client.zadd(qk.cron, {"junk": 1, "orphan": 2, "good": server_time_ms(client) - 5})
    runner = CronRunner(app, sync=False)
    assert runner.run_once() <= 1.0  # retried later, without spinning
    assert [m["schedule"] for m in metas(app, "good")] == ["good"]


def planned_ahead(app: Scheduler, runner: CronRunner, sid: str) -> int:
    """Run rounds until ``sid`` fired and the runner then had time to plan its
    coming firing ahead (it does before a wait of PREPARE_MIN_WAIT or more);
    returns that firing's time (ms)."""
    key = app.queue_keys("default").cron
    before = app.redis.zscore(key, sid)
    while True:
        wait = runner.run_once()
        after = app.redis.zscore(key, sid)
        assert after is not None
        if after != before and wait >= PREPARE_MIN_WAIT:
            return int(after)
        before = after
        time.sleep(wait)  # until the next fire time


def test_a_firing_planned_ahead_is_planned_again_when_the_runner_stalled(
    real_redis: redis.Redis,
) -> None:
    # The runner plans the coming firing while it waits. If it then stalls
    # (paused process, long GC) past what the misfire policy allows, the plan
    # made ahead must not be applied: cron_fire answers LATE and the firing
    # is planned again with the real clock -- here "skip" with no grace: the
    # stale firing is skipped, the one due now runs.
    app = Scheduler(real_redis, prefix="t")
    app.every(1, "m:f", id="a", misfire="skip", misfire_grace=0)
    app.schedules.sync()
    runner = CronRunner(app, sync=False)
    planned = planned_ahead(app, runner, "a")
    wait_until(lambda: server_time_ms(real_redis) >= planned + 1_100, timeout=10)  # stalled
    runner.run_once()
    fires = [m["fire_at"] for m in metas(app, "a")]
    assert planned not in fires  # 1.1 s late: a misfire under skip with no grace
    assert fires[-1] >= planned + 1_000
    info = app.schedules.get("a")
    assert info.missed >= 1 and info.fired == len(fires)


def test_a_firing_planned_ahead_follows_a_change_made_meanwhile(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="t")
    app.every(1, "m:f", [1], id="b")
    app.schedules.sync()
    runner = CronRunner(app, sync=False)
    planned = planned_ahead(app, runner, "b")
    app.schedules.add(app.every(1, "m:f", [2], id="b", declare=False))  # changed meanwhile
    wait_until(lambda: server_time_ms(real_redis) >= planned, timeout=10)
    runner.run_once()
    jobs = jobs_of(app)
    fired = [j for j in jobs.values() if json.loads(j.meta)["fire_at"] >= planned]
    assert fired and all(json.loads(j.payload)[0] == [2] for j in fired)
    assert runner.fired == len(jobs)  # each firing once


@pytest.fixture
def running(real_redis: redis.Redis) -> Iterator[tuple[Scheduler, CronRunner]]:
    app = Scheduler(real_redis, prefix="t")
    runner = CronRunner(app, max_block=30.0)
    runner.start()
    wait_until(lambda: runner.rounds > 0)
    try:
        yield app, runner
    finally:
        runner.stop()
        runner.join(5)
        assert not (runner._thread and runner._thread.is_alive())


@pytest.mark.slow
def test_a_new_schedule_wakes_a_sleeping_runner_and_fires_on_time(
    running: tuple[Scheduler, CronRunner],
) -> None:
    app, _ = running  # no schedules: it sleeps up to max_block = 30 s
    app.schedules.add(app.cron("* * * * * *", "m:f", id="sec", declare=False))
    # Woken by the change, not by the 30 s block. How late each firing is,
    # is measured in bench/cron.py (docs/benchmarks.md), not asserted here.
    wait_until(lambda: len(metas(app, "sec")) >= 3, timeout=5)
    for record in jobs_of(app).values():
        assert record.enqueued_ms >= json.loads(record.meta)["fire_at"]  # never early
    app.schedules.pause("sec")
    info = app.schedules.get("sec")
    assert info.paused and info.last_job_id == f"cron:sec:{info.last_fire_ms}"


@pytest.mark.slow
def test_a_change_wakes_a_sleeping_runner(running: tuple[Scheduler, CronRunner]) -> None:
    app, runner = running
    wait_until(lambda: runner.waiting)  # nothing to fire: blocked for up to 30 s
    rounds = runner.rounds
    app.schedules.add(app.cron("@yearly", "m:f", id="far", declare=False))
    wait_until(lambda: runner.rounds > rounds, timeout=2)  # woken by the change
    wait_until(lambda: runner.waiting)
    rounds = runner.rounds
    app.schedules.remove("far")
    wait_until(lambda: runner.rounds > rounds, timeout=2)


@pytest.mark.slow
def test_worker_runs_cron_and_delayed_jobs_on_the_same_wake_path(
    running: tuple[Scheduler, CronRunner],
) -> None:
    app, _ = running
    started: dict[str, float] = {}
    lock = threading.Lock()

    @app.task(name="tests:record")
    def record(tag: str) -> None:
        with lock:
            started.setdefault(tag, time.time())

    worker = Worker(app, concurrency=2, max_block=30.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        delayed = app.enqueue(record, ["delayed"], delay=0.7)
        app.schedules.add(app.every(1, record, ["cron"], id="jit", jitter=0.4, declare=False))
        wait_until(lambda: "delayed" in started and "cron" in started, timeout=5)
        info = delayed.info()
        assert info.ready_at is not None
        lag = started["delayed"] - info.ready_at.timestamp()
        assert -0.005 <= lag < 0.25, lag  # ran at its ETA, not before, not a poll later
        cron_job = jobs_of(app)[app.schedules.get("jit").last_job_id or ""]
        assert cron_job.ready_ms - json.loads(cron_job.meta)["fire_at"] < 400  # jitter bound
    finally:
        worker.stop(0)
        thread.join(10)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["skip", "catch_up"])
def test_misfire_grace_zero_still_runs_the_firing_due_now(
    running: tuple[Scheduler, CronRunner], policy: str
) -> None:
    app, _runner = running
    app.schedules.add(
        app.every(1, "m:f", id="zero", misfire=policy, misfire_grace=0, declare=False)
    )
    # Every firing used to be dropped: even an on-time one is a few ms late > 0.
    wait_until(lambda: len(metas(app, "zero")) >= 3, timeout=10)
    info = app.schedules.get("zero")
    assert info.missed == 0 and info.fired >= 3
