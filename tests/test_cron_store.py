"""Declaring schedules (validation) and managing stored ones (``app.schedules``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
import redis

from scheduler import (
    InvalidNameError,
    InvalidPriorityError,
    PayloadError,
    Scheduler,
    ValidationError,
)
from scheduler.backend.connection import server_time_ms
from scheduler.cron import (
    InvalidScheduleError,
    MisfirePolicy,
    ScheduleNotFoundError,
    ScheduleStatus,
)


@pytest.fixture
def fake_app() -> Scheduler:
    return Scheduler(fakeredis.FakeRedis(server=fakeredis.FakeServer()), prefix="t")


def report(day: str) -> str:
    return day


# -- declaration ------------------------------------------------------------------


def test_declaring_builds_a_complete_definition(fake_app: Scheduler) -> None:
    task = fake_app.task(queue="reports", time=4.0, max_attempts=5)(report)
    s = fake_app.cron(
        "0 6 * * MON-FRI",
        task,
        ["today"],
        tz="Europe/Paris",
        jitter=timedelta(seconds=30),
        misfire="catch-up",
        misfire_grace=3600,
        meta={"team": "bi"},
    )
    assert s.id == task.name  # default id: the task name
    assert s.queue == "reports"  # the task's queue
    assert (s.kind, s.cron, s.tz) == ("cron", "0 6 * * MON-FRI", "Europe/Paris")
    assert (s.jitter_ms, s.misfire, s.grace_ms) == (30_000, MisfirePolicy.CATCH_UP, 3_600_000)
    assert s.job.task == task.name and s.job.payload == '[["today"],{}]'
    assert s.job.priority == "4" and s.job.inputs == "1,4,1"
    assert s.job.options.startswith("5,")  # the task's max_attempts
    assert json.loads(s.job_meta(1_000, 2)) == {
        "team": "bi",
        "schedule": task.name,
        "fire_at": 1_000,
        "misfire": "catch_up",
        "missed": 2,
    }
    assert fake_app.schedules.declared == [s]
    assert fake_app.redis.keys("*") == []  # declaring writes nothing


def test_job_options_override_task_defaults(fake_app: Scheduler) -> None:
    task = fake_app.task(report)
    s = fake_app.every(timedelta(minutes=5), task, id="r", queue="other", priority=9.5)
    assert (s.queue, s.job.priority, s.job.inputs, s.every_ms) == ("other", "9.5", "", 300_000)
    by_name = fake_app.every(60, "pkg.mod:fn", id="n")  # a task by name, not imported
    assert by_name.job.task == "pkg.mod:fn" and by_name.queue == "default"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"cron": "61 * * * *"}, InvalidScheduleError),
        ({"cron": "* * *"}, InvalidScheduleError),
        ({"cron": "0 0 30 2 *"}, InvalidScheduleError),  # never fires
        # ... with an end too (it used to be stored as "ended"):
        ({"cron": "0 0 31 2 *", "end": datetime(2031, 1, 1, tzinfo=UTC)}, InvalidScheduleError),
        ({"cron": "0 0 31 2 *", "end": datetime(2001, 1, 1, tzinfo=UTC)}, InvalidScheduleError),
        ({"cron": "* * * * *", "tz": "Nowhere/City"}, InvalidScheduleError),
        ({"every": 0.5}, InvalidScheduleError),
        ({"every": -1}, InvalidScheduleError),
        ({"every": float("nan")}, InvalidScheduleError),
        ({"every": 60, "misfire": "sometimes"}, InvalidScheduleError),
        ({"every": 60, "jitter": -1}, InvalidScheduleError),
        ({"every": 60, "misfire_grace": "1h"}, InvalidScheduleError),
        ({"every": 60, "start": "2024-01-01"}, InvalidScheduleError),
        (
            {
                "every": 60,
                "start": datetime(2025, 1, 2, tzinfo=UTC),
                "end": datetime(2025, 1, 1, tzinfo=UTC),
            },
            InvalidScheduleError,
        ),
        ({"every": 60, "id": "has space"}, InvalidNameError),
        ({"every": 60, "id": "x" * 129}, InvalidNameError),
        ({"every": 60, "weight": -1.0}, InvalidPriorityError),
        ({"every": 60, "max_attempts": 0}, ValidationError),
        ({"every": 60, "meta": {1: 2}}, PayloadError),
        ({"every": 60, "frequency": 3}, TypeError),
    ],
)
def test_invalid_declarations_fail_at_once(
    fake_app: Scheduler, kwargs: dict[str, object], error: type[Exception]
) -> None:
    cron = kwargs.pop("cron", None)
    every = kwargs.pop("every", None)
    with pytest.raises(error):
        if cron is not None:
            fake_app.cron(str(cron), "m:f", id="x", **kwargs)  # type: ignore[arg-type]
        else:
            fake_app.every(every, "m:f", id=str(kwargs.pop("id", "x")), **kwargs)  # type: ignore[arg-type]
    assert fake_app.schedules.declared == []


def test_invalid_schedule_errors_are_validation_errors() -> None:
    assert issubclass(InvalidScheduleError, ValidationError)
    assert issubclass(InvalidScheduleError, ValueError)


def test_bad_arguments_fail_at_declaration(fake_app: Scheduler) -> None:
    with pytest.raises(PayloadError):
        fake_app.every(60, "m:f", [object()], id="x")


def test_a_task_name_that_is_no_schedule_id_needs_an_id(fake_app: Scheduler) -> None:
    def local() -> None: ...

    task = fake_app.task(local)  # name "...<locals>.local": not a valid schedule id
    with pytest.raises(InvalidScheduleError, match="give id="):
        fake_app.every(60, task)
    assert fake_app.every(60, task, id="local").id == "local"


def test_redeclaring_is_idempotent_but_a_conflict_is_an_error(fake_app: Scheduler) -> None:
    fake_app.every(60, "m:f", id="a")
    fake_app.every(60, "m:f", id="a")
    assert len(fake_app.schedules.declared) == 1
    with pytest.raises(InvalidScheduleError, match="already"):
        fake_app.every(120, "m:f", id="a")
    fake_app.every(120, "m:f", id="a", queue="other")  # ids are per queue
    assert len(fake_app.schedules.declared) == 2


def test_naive_start_and_end_are_in_the_schedule_timezone(fake_app: Scheduler) -> None:
    s = fake_app.cron(
        "0 * * * *",
        "m:f",
        id="a",
        tz="Europe/Paris",
        start=datetime(2030, 7, 1, 12, 0),
        end=datetime(2030, 7, 1, 15, 0),
    )
    assert s.start_ms == int(datetime(2030, 7, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)
    fires = []
    t = 0
    while (t := s.next_fire(t)) is not None:  # type: ignore[assignment]
        fires.append(t)
    assert [datetime.fromtimestamp(f / 1000, UTC).hour for f in fires] == [10, 11, 12, 13]


def test_interval_schedules_align_to_start_or_epoch(fake_app: Scheduler) -> None:
    hourly = fake_app.every(3600, "m:f", id="h")
    assert hourly.next_fire(1_000) == 3_600_000
    start = datetime(2030, 1, 1, 0, 0, 10, tzinfo=UTC)
    s = fake_app.every(60, "m:f", id="s", start=start)
    start_ms = int(start.timestamp() * 1000)
    assert s.next_fire(0) == start_ms and s.next_fire(start_ms) == start_ms + 60_000


# -- stored schedules -------------------------------------------------------------


def test_sync_upserts_declared_schedules_once(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    app.every(60, "m:f", id="a")
    app.cron("*/5 * * * *", "m:f", id="b", queue="other", paused=True)
    assert app.schedules.sync() == {"created": 2, "updated": 0, "unchanged": 0, "replaced": 0}
    assert app.schedules.sync() == {"created": 0, "updated": 0, "unchanged": 2, "replaced": 0}
    assert set(app.queue_names()) == {"default", "other"}  # registered for cron processes
    infos = app.schedules.list()
    assert [(i.queue, i.id, i.status) for i in infos] == [
        ("default", "a", ScheduleStatus.ACTIVE),
        ("other", "b", ScheduleStatus.PAUSED),
    ]
    now = server_time_ms(client)
    a = app.schedules.get("a")
    assert a.next_fire_ms is not None and now < a.next_fire_ms <= now + 60_000
    assert a.next_fire_ms % 60_000 == 0
    assert a.next_fire == datetime.fromtimestamp(a.next_fire_ms / 1000, UTC)
    assert (a.last_fire, a.last_job_id, a.fired, a.missed) == (None, None, 0, 0)
    assert app.schedules.get("b", "other").next_fire is None


def test_two_code_versions_update_one_schedule_never_duplicate(client: redis.Redis) -> None:
    v1 = Scheduler(client, prefix="t")
    v2 = Scheduler(client, prefix="t")
    v1.every(60, "m:report", ["v1"], id="report")
    v2.every(120, "m:report", ["v2"], id="report")
    v2.every(60, "m:extra", id="extra")
    assert v1.schedules.sync()["created"] == 1
    assert v2.schedules.sync() == {"created": 1, "updated": 1, "unchanged": 0, "replaced": 0}
    assert v1.schedules.sync() == {
        "created": 0,
        "updated": 1,
        "unchanged": 0,
        "replaced": 0,
    }  # last writer wins
    assert v1.schedules.sync()["unchanged"] == 1
    qk = v1.queue_keys("default")
    assert client.hlen(qk.schedules) == 2 and client.zcard(qk.cron) == 2
    assert v2.schedules.get("report").schedule.job.payload == '[["v1"],{}]'


def test_runtime_schedules_persist(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    s = app.cron("@daily", "m:f", id="nightly", tz="Asia/Tokyo", declare=False)
    assert app.schedules.declared == []
    assert app.schedules.add(s).outcome == "created"
    other = Scheduler(client, prefix="t")  # another process, declaring nothing
    assert other.schedules.sync() == {"created": 0, "updated": 0, "unchanged": 0, "replaced": 0}
    info = other.schedules.get("nightly")
    assert info.schedule == s and info.schedule.describe() == "cron '@daily' Asia/Tokyo"


def test_pause_resume_remove(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    app.schedules.add(app.every(60, "m:f", id="a", declare=False))
    assert app.schedules.pause("a") is True
    assert app.schedules.pause("a", "default") is False
    assert app.schedules.get("a").paused
    assert app.schedules.resume("a") is True
    assert app.schedules.resume("a") is False
    info = app.schedules.get("a")
    assert info.status is ScheduleStatus.ACTIVE and info.next_fire_ms is not None
    assert info.next_fire_ms > server_time_ms(client)
    assert app.schedules.remove("a") is True
    assert app.schedules.remove("a") is False
    with pytest.raises(ScheduleNotFoundError, match="no schedule 'a'"):
        app.schedules.get("a")
    with pytest.raises(ScheduleNotFoundError):
        app.schedules.pause("a")
    with pytest.raises(ScheduleNotFoundError):
        app.schedules.resume("a", "default")
    with pytest.raises(InvalidNameError):
        app.schedules.get("bad id")


def test_a_schedule_past_its_end_is_stored_ended(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t")
    s = app.every(60, "m:f", id="old", end=datetime(2001, 1, 1, tzinfo=UTC), declare=False)
    assert app.schedules.add(s).status == "E"
    info = app.schedules.get("old")
    assert info.status is ScheduleStatus.ENDED and info.next_fire is None
    assert app.schedules.resume("old") is False
