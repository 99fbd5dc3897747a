"""The producer side: job id characters, the app's codec, before-enqueue
hooks, the async producer (``redis.asyncio``) and burst mode -- on fakeredis
and a real server."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import subprocess
import sys
import uuid
from typing import Any

import pytest
import redis

from scheduler import JobSpec, JSONCodec, Scheduler
from scheduler.errors import InvalidNameError, PayloadError, ValidationError
from scheduler.testing import fake_app, run_jobs
from tests.helpers import ROOT


@dataclasses.dataclass
class Point:
    x: int
    at: dt.datetime


# -- job ids -------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["thumb:uploads/a.png", "{x}y", "ü-ñ/é", "a;b|c", "-lead"])
def test_natural_job_ids_are_accepted(app: Scheduler, job_id: str) -> None:
    job = app.enqueue("m:f", job_id=job_id)
    assert job.id == job_id
    assert app.job(job_id).info().id == job_id


@pytest.mark.parametrize(
    "job_id", ["", "a b", "a,b", "a\x1fb", "a\nb", "a\tb", "\udcff", "x" * 201]
)
def test_unsafe_job_ids_are_refused(app: Scheduler, job_id: str) -> None:
    with pytest.raises(InvalidNameError):
        app.enqueue("m:f", job_id=job_id)
    assert app.queue_names() == []


def test_a_natural_id_runs_and_its_result_is_awaited(real_app: Scheduler) -> None:
    @real_app.task(name="t:double")
    def double(x: int) -> int:
        return 2 * x

    job = real_app.enqueue(double, [4], job_id="thumb:uploads/a.png")
    assert run_jobs(real_app, timeout=30)
    assert job.result(timeout=5) == 8


# -- the codec -------------------------------------------------------------------

VALUES: list[Any] = [
    dt.datetime(2026, 1, 2, 3, 4, 5, 6),
    dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
    dt.date(2026, 1, 2),
    dt.time(23, 59, 1, 5),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    decimal.Decimal("3.14159265358979323846264338327950288"),
    b"\x00\xff",
    {1, 2},
    frozenset({"a"}),
    {"$scheduler": "datetime", "v": "not a date"},  # a user dict holding the tag key
    Point(1, dt.datetime(2020, 1, 1)),
    [{"nested": [uuid.UUID(int=5)]}],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_codec_round_trips_exactly(client: redis.Redis, value: Any) -> None:
    app = Scheduler(client, prefix="t", codec=JSONCodec(standard_types=True, records=[Point]))

    @app.task(name="t:echo")
    def echo(v: Any) -> Any:
        assert v == value and type(v) is type(value)
        return v

    job = echo.enqueue(value)
    assert job.info().args == [value]
    assert run_jobs(app, timeout=30)
    result = job.result(timeout=5)
    assert result == value and type(result) is type(value)


def test_plain_json_stays_the_default(app: Scheduler) -> None:
    with pytest.raises(PayloadError):
        app.enqueue("m:f", [dt.datetime(2026, 1, 1)])
    assert app.queue_names() == []
    # what an app did not register is not decoded: a reader sees plain JSON
    tagged = Scheduler(app.redis, prefix="t", codec=JSONCodec(standard_types=True))
    job = tagged.enqueue("m:f", [uuid.UUID(int=1)])
    assert app.job(job.id).info().args == [
        {"$scheduler": "uuid", "v": "00000000-0000-0000-0000-000000000001"}
    ]


def test_codec_refuses_unmatched_tags() -> None:
    with pytest.raises(ValidationError):
        JSONCodec(encoders={Point: ("p", dataclasses.asdict)}, decoders={})
    with pytest.raises(ValidationError):
        JSONCodec(records=[int])


# -- before-enqueue hooks ------------------------------------------------------


def test_hooks_stamp_meta_in_order_everywhere(client: redis.Redis) -> None:
    seen: list[str] = []
    app = Scheduler(client, prefix="t", before_enqueue=[lambda s: s.with_meta(tenant="acme")])

    @app.before_enqueue
    def trace(spec: JobSpec) -> JobSpec:
        seen.append(str(spec.task))
        return spec.with_meta(trace="t-1", tenant_seen=(spec.options.meta or {})["tenant"])

    one = app.enqueue("m:f", meta={"mine": 1})
    many = app.enqueue_many([JobSpec("m:g"), JobSpec("m:h")])
    assert seen == ["m:f", "m:g", "m:h"]
    for job in [one, *many]:
        meta = job.info().meta
        assert meta["trace"] == "t-1" and meta["tenant_seen"] == "acme"
    assert one.info().meta["mine"] == 1


def test_a_hook_refuses_and_nothing_is_written(app: Scheduler) -> None:
    @app.before_enqueue
    def refuse(spec: JobSpec) -> None:
        if spec.args and spec.args[0] == "bad":
            raise PermissionError("tenant over quota")

    with pytest.raises(PermissionError):
        app.enqueue_many([JobSpec("m:f", ("ok",)), JobSpec("m:f", ("bad",))])
    assert app.queue_names() == []
    with pytest.raises(ValidationError):
        Scheduler(app.redis, before_enqueue=[lambda s: 42]).enqueue("m:f")  # type: ignore[list-item,return-value]


# -- the async producer ----------------------------------------------------------


def test_async_producer_on_a_real_server(real_app: Scheduler) -> None:
    app = Scheduler(real_app.redis, prefix="t", codec=JSONCodec(standard_types=True))
    app.before_enqueue(lambda s: s.with_meta(via="async"))

    @app.task(name="t:add")
    def add(a: int, b: int) -> int:
        return a + b

    async def produce() -> tuple[Any, list[Any], dict[str, Any]]:
        job = await app.aenqueue(add, [1, 2], job_id="sum:1/2")
        again = await app.aenqueue(add, [1, 2], job_id="sum:1/2")  # idempotent
        assert again == job
        jobs = await app.aenqueue_many([JobSpec(add, (i, i)) for i in range(300)])
        waiter = asyncio.create_task(job.aresult(timeout=30))
        await asyncio.sleep(0)  # the waiter subscribes before the worker runs
        runner = asyncio.to_thread(run_jobs, app, timeout=60)
        assert await runner
        first = await waiter
        results = [await j.aresult(timeout=5) for j in jobs[:3]]
        await app.aclose()
        return first, results, job.info().meta

    first, results, meta = asyncio.run(produce())
    assert first == 3 and results == [0, 2, 4] and meta == {"via": "async"}
    assert app.job("sum:1/2").info().attempts == 1


def test_async_result_times_out_and_reloads_scripts(real_app: Scheduler) -> None:
    async def go() -> None:
        real_app.redis.script_flush()  # NOSCRIPT: loaded and sent again
        job = await real_app.aenqueue("m:f")
        with pytest.raises(Exception, match="ready"):
            await job.aresult(timeout=0.2)
        await real_app.aclose()

    asyncio.run(go())


# -- burst mode and the fixture --------------------------------------------------


def test_burst_runs_follow_ups_and_stops(scheduler_app: Scheduler) -> None:
    done: list[int] = []

    @scheduler_app.task(name="t:chain")
    def chain(n: int) -> None:
        done.append(n)
        if n < 5:
            chain.enqueue(n + 1)

    chain.enqueue(0)
    later = scheduler_app.enqueue(chain, [99], delay=3600)
    assert run_jobs(scheduler_app, timeout=30)
    assert done == [0, 1, 2, 3, 4, 5]
    assert later.status.value == "delayed"


def test_fake_app_has_the_async_api() -> None:
    app = fake_app()

    async def go() -> str:
        job = await app.aenqueue("m:f", job_id="x/y")
        return job.id

    assert asyncio.run(go()) == "x/y"
    assert app.job("x/y").status.value == "ready"


def test_cli_burst_exits_when_empty(papp: Scheduler) -> None:
    jobs = [papp.enqueue("tests.apps.procapp:nap", [0]) for i in range(5)]
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "worker", "tests.apps.procapp:app", "--burst"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert [j.result(timeout=0) for j in jobs] == [j.result(timeout=0) for j in jobs]
    assert all(isinstance(j.result(timeout=0), int) for j in jobs)


def test_burst_runs_retries_without_backoff(scheduler_app: Scheduler) -> None:
    from scheduler import Backoff

    @scheduler_app.task(name="t:flaky", max_attempts=3, backoff=Backoff(base=0, jitter=0))
    def flaky() -> int:
        attempts = scheduler_app.job(job.id).info().attempts
        if attempts < 3:
            raise ConnectionError(f"attempt {attempts}")
        return attempts

    job = flaky.enqueue()
    assert run_jobs(scheduler_app, timeout=30)
    assert job.result(timeout=0) == 3
