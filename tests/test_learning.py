"""Learned run times: statistics kept by complete.lua, the estimate made by
enqueue.lua (and cron_fire.lua), against the pure model in
:mod:`scheduler.learning` -- on a real Redis server.

Durations are produced by the scripts themselves: a job is leased, started
(``start.lua`` stamps ``started_ms``) and completed, and the test reads back
the record's ``started_ms`` and ``finished_ms`` (both server clock) -- so the
reference statistics are computed from exactly the durations the server
measured, and must match to the last bit (tolerance: none, the float
operations are the same).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler import Scheduler
from scheduler.errors import InvalidPriorityError, ValidationError
from scheduler.learning import (
    STATS_WINDOW,
    estimated_time,
    parse_stats_row,
    resolve_inputs,
    update_stats,
)
from scheduler.priority import ready_score

ROOT = Path(__file__).resolve().parent.parent


def run_jobs(app: Scheduler, queue: str, task: str, n: int, worker: str = "w") -> list[int]:
    """Enqueue, lease, start and complete ``n`` jobs of ``task`` one by one;
    returns the durations (ms) the server measured."""
    qk = app.queue_keys(queue)
    durations = []
    for i in range(n):
        job = app.enqueue(task, [i], queue=queue)
        reply = app.scripts.lease(qk, 1, worker, f"r{job.id}")
        [(job_id, _text)] = reply.jobs
        rec = app.backend.read_record(queue, job_id)
        assert rec is not None
        app.scripts.start(qk, [(job_id, rec.token)])
        app.scripts.complete(qk, [(job_id, rec.token, "null")])
        done = app.backend.read_record(queue, job_id)
        assert done is not None and done.started_ms is not None and done.finished_ms
        durations.append(done.finished_ms - done.started_ms)
    return durations


def reference(durations: list[int]) -> tuple[int, float, float]:
    n, mean, var = 0, 0.0, 0.0
    for x in durations:
        n, mean, var = update_stats(n, mean, var, float(x))
    return n, mean, var


def test_lua_and_python_windows_agree() -> None:
    text = (ROOT / "lua" / "lib" / "stats.lua").read_text()
    match = re.search(r"^local STATS_WINDOW = (\d+)$", text, re.MULTILINE)
    assert match is not None and int(match[1]) == STATS_WINDOW


def test_statistics_after_runs_match_the_reference(real_app: Scheduler) -> None:
    durations = run_jobs(real_app, "q", "m:t", 7)
    [stats] = real_app.backend.task_stats("q")
    n, mean, var = reference(durations)
    assert (stats.task, stats.runs, stats.mean_ms, stats.var_ms2) == ("m:t", n, mean, var)
    assert stats.last_duration_ms == durations[-1]


def test_welford_exact_then_weighted() -> None:
    xs = [float(x % 17) * 3.5 for x in range(3 * STATS_WINDOW)]
    n, mean, var = 0, 0.0, 0.0
    for i, x in enumerate(xs, 1):
        n, mean, var = update_stats(n, mean, var, x)
        if i <= STATS_WINDOW:  # exact Welford: population mean and variance
            m = math.fsum(xs[:i]) / i
            assert math.isclose(mean, m, rel_tol=1e-12, abs_tol=1e-12)
            v = math.fsum((y - m) ** 2 for y in xs[:i]) / i
            assert math.isclose(var, v, rel_tol=1e-9, abs_tol=1e-9)
    # afterwards: a shift in run time is followed (exponential forgetting)
    for _ in range(10 * STATS_WINDOW):
        n, mean, var = update_stats(n, mean, var, 1000.0)
    assert math.isclose(mean, 1000.0, rel_tol=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    durations=st.lists(st.integers(0, 10**7), min_size=1, max_size=30),
    alpha=st.floats(0, 10, allow_nan=False),
)
def test_update_and_estimate_match_lua(
    redis_server: object, durations: list[int], alpha: float
) -> None:
    """stats_record and stats_estimate in Lua, fed the durations directly, give
    the Python model's values bit for bit."""
    client = redis.Redis.from_url(redis_server.url)  # type: ignore[attr-defined]
    lib = (ROOT / "lua" / "lib" / "stats.lua").read_text()
    body = lib.split("--@include lib/util.lua", 1)[1]
    script = (
        "local K_TASKSTATS = KEYS[1]\n" + body + "\nlocal tasks, durations = {}, {}\n"
        "for i = 2, #ARGV do tasks[i - 1], durations[i - 1] = 't', tonumber(ARGV[i]) end\n"
        "stats_record(tasks, durations, 5)\n"
        "local n, mean, var = stats_decode(redis.call('HGET', KEYS[1], 't'))\n"
        "local est = stats_estimate(n, mean, var, tonumber(ARGV[1]))\n"
        "return {string.format('%.17g', mean), string.format('%.17g', var),"
        " string.format('%.17g', est)}\n"
    )
    client.delete("ts")
    mean_t, var_t, est_t = client.eval(script, 1, "ts", repr(alpha), *durations)
    _, mean, var = reference(durations)
    assert float(mean_t) == mean and float(var_t) == var
    assert float(est_t) == estimated_time(mean, var, alpha)
    client.close()


def test_auto_job_gets_the_formula_priority(real_app: Scheduler) -> None:
    real_app.task(name="m:auto", time="auto", alpha=0.75, min_samples=3, weight=2.0, resource=4.0)(
        lambda x: x
    )
    real_app.scripts.queue_config(real_app.queue_keys("q"), "aging", "0.5")
    # Before min_samples runs: the fallback time (1 s).
    first = real_app.enqueue("m:auto", [0], queue="q").info()
    assert first.inputs == (2.0, 1.0, 4.0) and first.priority == 2.0 * 1.0 / 4.0
    assert first.record.estimate is not None and not first.record.estimate.learned
    durations = run_jobs(real_app, "q", "m:auto", 4)
    job = real_app.enqueue("m:auto", [9], queue="q")
    info = job.info()
    n, mean, var = reference(durations)
    est = estimated_time(mean, var, 0.75)
    assert info.record.estimate is not None and info.record.estimate.learned
    assert info.record.estimate.runs == n
    assert info.inputs == (2.0, est, 4.0)
    assert info.priority == 2.0 * est / 4.0
    # The ready score is made from that priority, in one place (record.lua).
    member = info.record.seq + ":" + job.id
    score = real_app.backend.client.zscore(real_app.queue_keys("q").ready, member)
    assert score == ready_score(info.priority, info.record.aged)


def test_auto_jobs_are_ordered_by_their_estimates(real_app: Scheduler) -> None:
    """Ordering of auto-estimated jobs: longer learned time, higher priority."""
    for name in ("m:fast", "m:slow"):
        real_app.task(name=name, time="auto", min_samples=1)(lambda: None)
    qk = real_app.queue_keys("q")
    # Learn: the slow task's run takes longer (a real, measured wait).
    import time as _time

    for name, pause in (("m:fast", 0.0), ("m:slow", 0.05)):
        job = real_app.enqueue(name, queue="q")
        [(job_id, _)] = real_app.scripts.lease(qk, 1, "w", f"l{job_id_of(job)}").jobs
        rec = real_app.backend.read_record("q", job_id)
        assert rec is not None
        real_app.scripts.start(qk, [(job_id, rec.token)])
        _time.sleep(pause)  # the run itself: a duration the server measures
        real_app.scripts.complete(qk, [(job_id, rec.token, "null")])
    fast = real_app.enqueue("m:fast", queue="q")
    slow = real_app.enqueue("m:slow", queue="q")
    assert slow.info().priority > fast.info().priority
    got = real_app.scripts.lease(qk, 2, "w", "order").jobs
    assert [j for j, _ in got] == [slow.id, fast.id]


def job_id_of(job: object) -> str:
    return str(job.id)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"time": "soon"}, InvalidPriorityError),
        ({"time": "auto", "alpha": -1.0}, InvalidPriorityError),
        ({"time": "auto", "alpha": math.nan}, InvalidPriorityError),
        ({"time": "auto", "alpha": math.inf}, InvalidPriorityError),
        ({"time": "auto", "min_samples": 0}, InvalidPriorityError),
        ({"time": "auto", "min_samples": 2.5}, InvalidPriorityError),
    ],
)
def test_bad_learning_input_writes_nothing(
    real_app: Scheduler, options: dict[str, object], error: type[ValidationError]
) -> None:
    with pytest.raises(error):
        real_app.enqueue("m:t", queue="q", **options)
    with pytest.raises(error):
        real_app.task(name="m:bad", **options)(lambda: None)
    assert real_app.backend.client.keys("t:*") == []


def test_resolve_inputs_forms() -> None:
    assert resolve_inputs(None, 2.0, "auto", 4.0, 0.5, 3) == (0.5, "2,1,4,0.5,3")
    assert resolve_inputs(None, 2.0, 3.0, 4.0) == (1.5, "2,3,4")
    assert resolve_inputs(7.0, 2.0, "auto", 4.0) == (7.0, "")


def test_damaged_stats_row_restarts(real_app: Scheduler) -> None:
    qk = real_app.queue_keys("q")
    real_app.backend.client.hset(qk.taskstats, "m:t", "not,a,row")
    assert parse_stats_row("m:t", "not,a,row") is None
    assert real_app.backend.task_stats("q") == []
    durations = run_jobs(real_app, "q", "m:t", 2)
    [stats] = real_app.backend.task_stats("q")
    assert (stats.runs, stats.mean_ms) == reference(durations)[:2]
