"""The cron runner on a real Redis server with damaged records and waits: one
bad record never stops the others, is reported once and never delays them."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from scheduler import Scheduler
from scheduler.backend.connection import server_time_ms
from scheduler.cron import CronRunner, Schedule
from tests.test_cron_runner import as_if_down_since, metas


def damage(app: Scheduler, sid: str, old: bytes, new: bytes) -> None:
    qk = app.queue_keys("default")
    raw = app.redis.hget(qk.schedules, sid)
    assert isinstance(raw, bytes) and old in raw
    app.redis.hset(qk.schedules, sid, raw.replace(old, new, 1))


def due_every_second(app: Scheduler, sid: str) -> Schedule:
    s = app.every(1, "m:f", [sid], id=sid, declare=False)
    app.schedules.add(s)
    now = server_time_ms(app.redis)
    as_if_down_since(app, s, now - now % 1000)  # due now, on time
    return s


def run_once_within(runner: CronRunner, timeout: float = 10.0) -> float:
    """run_once in a thread: a runner that spins fails the test instead of hanging it."""
    result: list[float] = []
    thread = threading.Thread(target=lambda: result.append(runner.run_once()), daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        runner.stop()
        pytest.fail(f"run_once did not return within {timeout} s (spinning)")
    assert result, "run_once raised"
    return result[0]


def damaged_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_bad_number_in_one_record_stops_nothing_else(
    real_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = Scheduler(real_redis, prefix="t")
    healthy = [due_every_second(app, f"ok{i}") for i in range(3)]
    due_every_second(app, "bad-fired")
    due_every_second(app, "bad-missed")
    # Python's int() takes both, Lua's tonumber neither: the old runner read
    # them as healthy, and the script raised half-way, stopping every schedule.
    damage(app, "bad-fired", b"\x1f0\x1f0\x1f", b"\x1f1_0\x1f0\x1f")
    damage(app, "bad-missed", b"\x1f0\x1f0\x1f", "\x1f0\x1f\u0661\x1f".encode())
    runner = CronRunner(app, sync=False)
    with caplog.at_level(logging.INFO, logger="scheduler.cron"):
        run_once_within(runner)
        for s in healthy:
            assert len(metas(app, s.id)) == 1, s.id
        assert metas(app, "bad-fired") == [] and metas(app, "bad-missed") == []
        lines = damaged_lines(caplog)
        assert len(lines) == 2, lines
        for sid in ("bad-fired", "bad-missed"):
            (line,) = [x for x in lines if sid in x]
            assert "queue default" in line and "damaged" in line
        run_once_within(runner)  # logged once: the bad ones left the cron set
        assert len(damaged_lines(caplog)) == 2
    qk = app.queue_keys("default")
    assert real_redis.zscore(qk.cron, "bad-fired") is None
    assert real_redis.hexists(qk.schedules, "bad-fired")  # kept for the operator


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (b'"id":"mix"', b'"id":"other"', "names schedule 'other'"),
        (b'"queue":"default"', b'"queue":"elsewhere"', "in queue 'elsewhere'"),
        (b'"v":1', b'"v":"1', "bad definition"),
    ],
)
def test_a_definition_naming_another_id_or_queue_is_damaged_not_spinning(
    real_redis: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    old: bytes,
    new: bytes,
    why: str,
) -> None:
    app = Scheduler(real_redis, prefix="t")
    due_every_second(app, "ok")
    due_every_second(app, "mix")
    damage(app, "mix", old, new)
    runner = CronRunner(app, sync=False)
    with caplog.at_level(logging.INFO, logger="scheduler.cron"):
        run_once_within(runner)  # the old runner looped here for ever ("stale" = progress)
    (line,) = damaged_lines(caplog)
    assert "mix" in line and why in line
    assert [m["schedule"] for m in metas(app, "ok")] == ["ok"] and metas(app, "mix") == []


def test_the_wait_is_bounded_by_the_next_healthy_fire_time(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix="t")
    qk = app.queue_keys("default")
    s = app.every(1, "m:f", id="soon", declare=False)
    app.schedules.add(s)
    now = server_time_ms(real_redis)
    soon = now + 300
    real_redis.zadd(qk.cron, {"soon": soon})
    real_redis.hset(qk.schedules, "junk", "not a record")
    real_redis.zadd(qk.cron, {"junk": now - 10, "orphan": now - 5})  # due, unreadable
    runner = CronRunner(app, sync=False)
    wait = run_once_within(runner)
    # It used to sleep a whole second (RETRY_BROKEN) past "soon".
    assert wait <= (soon - now + 1) / 1000
    assert real_redis.zrange(qk.cron, 0, -1) == [b"soon"]
