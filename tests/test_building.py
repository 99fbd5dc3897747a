"""``JobBuilder.build_many`` builds exactly what ``build`` builds, job by
job (no server: the builder does no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from scheduler import EnqueueOptions, Scheduler, Task
from scheduler.errors import ValidationError


@pytest.fixture
def sched() -> tuple[Scheduler, Task[Any, Any], Task[Any, Any]]:
    app = Scheduler.from_url("redis://127.0.0.1:1/0")

    @app.task(queue="q1", priority=3)
    def a(x: int = 0) -> None:
        """A task."""

    @app.task(max_attempts=2)
    def b() -> None:
        """Another."""

    return app, a, b


def without_ids(built: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [(queue, item._replace(job_id="")) for queue, item in built]


def test_build_many_matches_build_job_by_job(
    sched: tuple[Scheduler, Task[Any, Any], Task[Any, Any]],
) -> None:
    app, a, b = sched
    shared = EnqueueOptions(delay=5, meta={"k": 1})
    jobs = [
        (a, (1,), None, EnqueueOptions()),
        (a, (2,), {}, shared),
        (a, (3,), None, shared),
        (b, (), None, shared),
        ("other.mod:fn", (), {"y": 2}, EnqueueOptions(priority=1.5, queue="q2")),
        (a, (), None, EnqueueOptions(eta=datetime(2030, 1, 1, tzinfo=UTC), job_id="mine")),
        (a, (4,), None, EnqueueOptions(weight=2, time=0.5, resource=4)),
    ]
    one = [app.builder.build(*job) for job in jobs]
    many = app.builder.build_many(jobs)
    assert without_ids(many) == without_ids(one)
    assert many[5][1].job_id == "mine"
    generated = [item.job_id for _, item in many]
    assert len(set(generated)) == len(generated)


def test_build_many_refuses_what_build_refuses(
    sched: tuple[Scheduler, Task[Any, Any], Task[Any, Any]],
) -> None:
    app, a, _ = sched
    both = EnqueueOptions(delay=1, eta=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError, match="either delay or eta"):
        app.builder.build_many([(a, (), None, EnqueueOptions()), (a, (), None, both)])
    with pytest.raises(ValidationError):
        app.builder.build_many([(a, (object(),), None, EnqueueOptions())])
    with pytest.raises(ValidationError):
        app.builder.build_many([(a, (), None, EnqueueOptions(job_id="bad id!"))])
