"""Concurrency and rate limits (queue and task) and worker capacity, enforced
by lease.lua -- on a real Redis server, with real worker processes where the
claim is about many workers."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import JobState, Scheduler
from scheduler.backend.scripts import LeaseFit, ScriptReplyError
from scheduler.devserver import DevServer
from scheduler.errors import ValidationError
from scheduler.limits import Rate, parse_rate
from scheduler.worker.capacity import Capacity
from tests.helpers import running, wait_until

ROOT = Path(__file__).resolve().parent.parent


# -- parsing and bad input -----------------------------------------------------


def test_parse_rate() -> None:
    assert parse_rate("100/m") == Rate(100, 60_000)
    assert parse_rate("20/2s") == Rate(20, 2000)
    assert parse_rate(" 5 / 1.5h ") == Rate(5, 5_400_000)
    assert str(Rate(20, 2000)) == "20/2s" and str(Rate(100, 60_000)) == "100/m"


@pytest.mark.parametrize(
    "text", ["", "100", "100/", "/m", "0/m", "-1/m", "1/0s", "1/x", "1.5/m", "1/-2s", "1/2y"]
)
def test_bad_rate_is_refused(real_app: Scheduler, text: str) -> None:
    with pytest.raises(ValidationError):
        real_app.set_limits("q", rate=text)
    assert real_app.backend.client.exists(real_app.queue_keys("q").limits) == 0


@pytest.mark.parametrize("value", [0, -1, 1.5, math.nan, True, "3"])
def test_bad_concurrency_is_refused(real_app: Scheduler, value: object) -> None:
    with pytest.raises(ValidationError):
        real_app.set_limits("q", concurrency=value)  # type: ignore[arg-type]
    assert real_app.backend.client.exists(real_app.queue_keys("q").limits) == 0


@pytest.mark.parametrize("value", [0, -1.0, math.nan, math.inf, True])
def test_bad_capacity_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        Capacity(value, 1.0)  # type: ignore[arg-type]


def test_script_refuses_bad_values_and_writes_nothing(real_app: Scheduler) -> None:
    qk = real_app.queue_keys("q")
    for conc, rate in [("0", ""), ("x", ""), ("", "1/0"), ("", "5"), ("", "1e3/5")]:
        with pytest.raises(ScriptReplyError):
            real_app.scripts.queue_limit(qk, "", conc, rate)
    assert real_app.backend.client.exists(qk.limits) == 0


def test_limits_round_trip(real_app: Scheduler) -> None:
    limits = real_app.set_limits("q", concurrency=3, rate="100/m")
    limits = real_app.set_limits("q", task="m:t", concurrency=1)
    assert (limits.concurrency, limits.rate, limits.task_concurrency) == (
        3,
        Rate(100, 60_000),
        {"m:t": 1},
    )
    assert limits.describe() == "concurrency 3, rate 100/m; task m:t: concurrency 1"
    limits = real_app.set_limits("q", clear_concurrency=True, clear_rate=True)
    assert limits.concurrency is None and limits.rate is None


# -- limits in the lease script -------------------------------------------------


def test_task_concurrency_holds_jobs_in_place(real_app: Scheduler) -> None:
    qk = real_app.queue_keys("q")
    real_app.set_limits("q", task="m:a", concurrency=1)
    a1 = real_app.enqueue("m:a", priority=9, queue="q")
    a2 = real_app.enqueue("m:a", priority=8, queue="q")
    b = real_app.enqueue("m:b", priority=1, queue="q")
    got = [j for j, _ in real_app.scripts.lease(qk, 3, "w", "r1").jobs]
    assert got == [a1.id, b.id]
    assert a2.status is JobState.READY  # held back, in place
    rec = real_app.backend.read_record("q", a1.id)
    assert rec is not None
    real_app.scripts.complete(qk, [(a1.id, rec.token, "null")])
    got = [j for j, _ in real_app.scripts.lease(qk, 3, "w", "r2").jobs]
    assert got == [a2.id]


def test_queue_rate_says_when_it_frees(real_app: Scheduler) -> None:
    qk = real_app.queue_keys("q")
    real_app.set_limits("q", rate="2/10s")
    for i in range(4):
        real_app.enqueue("m:t", [i], queue="q")
    reply = real_app.scripts.lease(qk, 4, "w", "r1")
    assert len(reply.jobs) == 2
    assert 4000 <= reply.wake_ms <= 5000  # one token per 5 s


def test_concurrency_limit_set_while_leased_counts_those_leases(real_app: Scheduler) -> None:
    qk = real_app.queue_keys("q")
    for i in range(3):
        real_app.enqueue("m:a", [i], queue="q")
    assert len(real_app.scripts.lease(qk, 1, "w", "r1").jobs) == 1
    real_app.set_limits("q", task="m:a", concurrency=1)
    assert real_app.scripts.lease(qk, 2, "w", "r2").jobs == []


# -- capacity: a model of the selection ----------------------------------------


def model_select(
    ready: list[tuple[str, float, int]], n: int, cap: float, free: float, wait_ms: int, now: int
) -> list[str]:
    """The jobs a lease with capacity picks: ``ready`` is (id, resource,
    ready_ms) in ready order."""
    picked: list[str] = []
    for job_id, res, ready_ms in ready:
        if res > cap:
            continue
        if res > free:
            if wait_ms >= 0 and now - ready_ms >= wait_ms:
                break
            continue
        free -= res
        picked.append(job_id)
        if len(picked) == n:
            break
    return picked


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=12),
    ages=st.lists(st.integers(0, 4), min_size=12, max_size=12),
    n=st.integers(1, 6),
    cap=st.integers(1, 8),
    used=st.integers(0, 8),
    wait=st.sampled_from([0, 2000, -1]),
)
def test_capacity_selection_matches_model(
    real_app: Scheduler,
    sizes: list[int],
    ages: list[int],
    n: int,
    cap: int,
    used: int,
    wait: int,
) -> None:
    """Random ready sets (resources, how long each has waited) and worker
    capacities: the lease picks exactly what the model picks, never more than
    the free capacity, and under bounded backfill never passes a job that has
    waited past the bound (so a big job is not starved)."""
    client = real_app.backend.client
    client.flushdb()
    check_selection(real_app, client, sizes, ages, n, cap, used, wait)


def check_selection(
    app: Scheduler,
    real_redis: redis.Redis,
    sizes: list[int],
    ages: list[int],
    n: int,
    cap: int,
    used: int,
    wait: int,
) -> None:
    qk = app.queue_keys("q")
    ids = [
        app.enqueue("m:t", [i], weight=float(i % 3 + 1), resource=s, queue="q").id
        for i, s in enumerate(sizes)
    ]
    # Backdate how long each job has waited (ready time), in whole seconds.
    now = app.backend.server_time_ms()
    ready = []
    for i, job_id in enumerate(ids):
        rec = app.backend.read_record("q", job_id)
        assert rec is not None
        ready_ms = now - ages[i] * 1000
        fields = real_redis.hget(qk.jobs, job_id).decode().split("\x1f")  # type: ignore[union-attr]
        fields[7] = str(ready_ms)
        real_redis.hset(qk.jobs, job_id, "\x1f".join(fields))
        ready.append((job_id, float(sizes[i]), ready_ms))
    order = [job_id for job_id, _ in app.backend.job_set_range("q", "ready", 0, -1)]
    ready.sort(key=lambda r: order.index(r[0]))
    free = max(0, cap - used)
    got = [j for j, _ in app.scripts.lease(qk, n, "w", "r", LeaseFit(cap, free, wait)).jobs]
    # The server's clock moved on a little: ages are whole seconds, the bound 2 s.
    assert got == model_select(ready, n, cap, free, wait, now)
    assert sum(sizes[ids.index(j)] for j in got) <= free


def test_worker_capacity_never_exceeded(real_app: Scheduler) -> None:
    """A worker with capacity 5 and random job sizes: sampled at every lease
    (the observer sees each), its held jobs' resources never exceed 5."""
    import random
    import threading

    rng = random.Random(7)
    real_app.task(name="m:work")(lambda: threading.Event().wait(0.005))
    jobs = [
        real_app.enqueue("m:work", resource=rng.choice([1, 2, 3, 5]), queue="q") for _ in range(40)
    ]
    peaks: list[float] = []

    class Probe:
        def on_leased(self, job: object) -> None:
            peaks.append(worker._book.held_resource)

        def __getattr__(self, name: str) -> object:
            return lambda *args: None

    with running(real_app, queues=["q"], concurrency=4, capacity=5, observer=Probe()) as worker:
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=30)
    assert peaks and max(peaks) <= 5


def test_big_job_is_not_starved_by_backfill(real_app: Scheduler) -> None:
    """A stream of small jobs keeps a worker busy; a big job that waits past
    the backfill bound stops the backfill and runs."""
    import threading

    real_app.task(name="m:small")(lambda: threading.Event().wait(0.02))
    real_app.task(name="m:big")(lambda: None)
    for _ in range(4):
        real_app.enqueue("m:small", resource=1, queue="q", priority=1)
    big = real_app.enqueue("m:big", resource=4, queue="q", priority=10)
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            real_app.enqueue("m:small", resource=1, queue="q", priority=1)
            stop.wait(0.005)

    feeder = threading.Thread(target=feed, daemon=True)
    with running(real_app, queues=["q"], concurrency=4, capacity=4, backfill_wait=0.3):
        feeder.start()
        try:
            wait_until(lambda: big.status is JobState.SUCCEEDED, timeout=20)
        finally:
            stop.set()
            feeder.join()


def test_job_bigger_than_every_worker_is_reported(real_app: Scheduler) -> None:
    from scheduler.admin.capacity import oversized_jobs

    real_app.enqueue("m:t", resource=9, queue="q")
    real_app.enqueue("m:t", resource=1, queue="q")
    with running(real_app, queues=["q"], capacity=4):
        wait_until(lambda: real_app.backend.job_set_size("q", "ready") == 1)
        report = oversized_jobs(real_app.backend, ["q"])
    assert [(r.queue, r.resource, r.largest_capacity) for r in report] == [("q", 9.0, 4.0)]


# -- many worker processes ------------------------------------------------------


@pytest.fixture
def lapp(redis_server: DevServer, real_redis: redis.Redis) -> Iterator[Scheduler]:
    os.environ["SCHEDULER_TEST_URL"] = redis_server.url
    os.environ["SCHEDULER_TEST_PREFIX"] = "p"
    sys.modules.pop("tests.apps.limits_app", None)
    limits_app = importlib.import_module("tests.apps.limits_app")

    yield limits_app.app
    limits_app.app.close()


def start_workers(k: int, *args: str) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scheduler",
                "worker",
                "tests.apps.limits_app:app",
                "-q",
                "lim",
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(k)
    ]


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        p.communicate(timeout=30)


def start_capacity_worker(capacity: int, concurrency: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apps.capacity_worker", str(capacity), str(concurrency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    return proc


@pytest.mark.slow
def test_capacity_never_exceeded_across_kills(lapp: Scheduler, real_redis: redis.Redis) -> None:
    """Random job sizes and run times; a worker process with capacity 5 is
    killed (SIGKILL) mid-drain while it holds leases, another started, that
    one killed too, a third finishes the drain. Every worker samples its held
    resource at every lease (``tests/apps/capacity_worker.py``): no sample
    exceeds 5, and every job succeeds (the dead workers' leases expire and
    their jobs run again)."""
    import random
    import signal

    rng = random.Random(11)
    jobs = [
        lapp.enqueue(
            "limits:sized", [rng.randint(20, 120)], queue="cap", resource=rng.choice([1, 2, 3, 5])
        )
        for _ in range(40)
    ]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for done_before_kill in (8, 20):
            proc = start_capacity_worker(5, 4)
            procs.append(proc)
            wait_until(lambda n=done_before_kill: real_redis.llen("sized") >= n, timeout=60)
            wait_until(lambda: lapp.backend.job_set_size("cap", "leased") > 0, timeout=30)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        procs.append(start_capacity_worker(5, 4))
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=90)
    finally:
        stop_all([p for p in procs if p.poll() is None])
    samples = [s.decode().split(",") for s in real_redis.lrange("held", 0, -1)]
    by_pid: dict[str, list[float]] = {}
    for pid, held in samples:
        by_pid.setdefault(pid, []).append(float(held))
    assert len(by_pid) == 3 and all(by_pid.values())
    assert max(max(v) for v in by_pid.values()) <= 5, by_pid
    assert max(max(v) for v in by_pid.values()) > 1  # several jobs were held at once
    assert len(samples) >= 40 and real_redis.llen("sized") >= 40
    # Killed while holding leases: those jobs were stranded, expired and ran again.
    assert any(j.info().attempts > 1 for j in jobs)


@pytest.mark.slow
def test_concurrency_limit_across_four_worker_processes(
    lapp: Scheduler, real_redis: redis.Redis
) -> None:
    span = lapp.tasks["limits:span"]
    lapp.set_limits("lim", concurrency=3)
    jobs = [span.enqueue(30) for _ in range(40)]
    procs = start_workers(4, "--concurrency", "4")
    try:
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=60)
    finally:
        stop_all(procs)
    spans = [tuple(map(float, s.decode().split(","))) for s in real_redis.lrange("spans", 0, -1)]
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running_now = peak = 0
    for _, step in events:
        running_now += step
        peak = max(peak, running_now)
    assert len(spans) == 40 and peak <= 3
    assert peak >= 2  # the limit, not a single worker, was what bounded it


@pytest.mark.slow
def test_rate_limit_within_its_bound(lapp: Scheduler, real_redis: redis.Redis) -> None:
    """A rate of 20 per 2 s, measured over about 6 s (not a minute: the bound
    is the same at every window length): in every window of W ms the leases
    number at most 20 + 20 * W / 2000 (token bucket), and they keep coming.

    A lease's time is read from its event's stream id: the server's clock
    at the script's XADD, which can be later than the clock the bucket used
    (the script's TIME, at its start) by as much as the script ran --
    descheduled mid-script on a loaded machine, tens of ms. So each window
    is widened by the longest lease call (SLOWLOG, wall-clock durations):
    21 leases 44 ms apart by their stream ids were 20 + 1 refilled token
    apart by the bucket's clock."""
    span = lapp.tasks["limits:span"]
    lapp.set_limits("lim", rate="20/2s")
    jobs = [span.enqueue(1) for _ in range(70)]
    qk = lapp.queue_keys("lim")
    saved = real_redis.config_get("slowlog-*")
    real_redis.config_set("slowlog-log-slower-than", 0)
    real_redis.config_set("slowlog-max-len", 100_000)
    real_redis.slowlog_reset()
    procs = start_workers(2, "--concurrency", "4")
    try:
        wait_until(lambda: all(j.status is JobState.SUCCEEDED for j in jobs), timeout=30)
        lease_key = qk.key("lreqs").encode()
        lease_us = [
            int(e["duration"]) for e in real_redis.slowlog_get(100_000) if lease_key in e["command"]
        ]
    finally:
        stop_all(procs)
        for name, value in saved.items():
            real_redis.config_set(name, value)
    assert lease_us, "no lease call in the slow log"
    slack_ms = math.ceil(max(lease_us) / 1000)
    times = []
    for entry_id, fields in real_redis.xrange(qk.events):
        if fields[b"e"] == b"leased":
            ms = int(entry_id.decode().split("-")[0])
            times += [ms] * len(fields[b"j"].split(b","))
    times.sort()
    assert len(times) == 70
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            window = times[j] - start
            bound = 20 + math.floor(20 * (window + 1 + slack_ms) / 2000)
            assert j - i + 1 <= bound, (i, j, window, slack_ms)
    assert times[-1] - times[0] >= 2000 * (70 - 20) / 20 - 100 - slack_ms
