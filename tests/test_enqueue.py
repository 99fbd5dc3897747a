"""Enqueue through the Scheduler API: options, validation, nothing written on error."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
import redis

from scheduler import (
    Backoff,
    InvalidNameError,
    InvalidPriorityError,
    JobNotFoundError,
    JobState,
    PayloadError,
    Scheduler,
    ValidationError,
)
from scheduler.task import TASK_OPTIONS, EnqueueOptions, JobSpec


def snapshot(client: redis.Redis) -> dict[bytes, object]:
    return {k: client.dump(k) for k in client.keys("t:*")}


def make_tasks(app: Scheduler):  # type: ignore[no-untyped-def]
    @app.task(queue="q", time=2.0, max_attempts=4, lease=5)
    def add(a: int, b: int) -> int:
        return a + b

    return add


def test_enqueue_defaults_and_overrides(app: Scheduler) -> None:
    add = make_tasks(app)
    job = add.enqueue(1, 2)
    info = job.info()
    assert (info.task, info.queue, info.args, info.kwargs) == (add.name, "q", [1, 2], {})
    assert info.priority == 2.0 and info.inputs == (1.0, 2.0, 1.0)
    assert info.max_attempts == 4 and info.state is JobState.READY
    assert info.record.options.lease_ms == 5000
    other = add.options(priority=-3, queue="other", max_attempts=1).enqueue(a=1, b=2)
    info2 = other.info()
    assert (info2.priority, info2.inputs, info2.queue, info2.max_attempts) == (
        -3.0,
        None,
        "other",
        1,
    )
    assert info2.kwargs == {"a": 1, "b": 2}
    w = add.options(weight=3).enqueue(1, 1)
    assert w.info().priority == 6.0  # weight 3 * task time 2 / resource 1


def test_enqueue_by_name_without_the_task(app: Scheduler) -> None:
    job = app.enqueue(
        "other.module:fn", args=[1], kwargs={"x": "y"}, queue="remote", time=4.0, resource=2.0
    )
    info = job.info()
    assert info.task == "other.module:fn" and info.priority == 2.0
    assert info.max_attempts == app.max_attempts
    assert app.queue_names() == ["remote"]


def test_delay_eta_and_meta(app: Scheduler) -> None:
    add = make_tasks(app)
    d = add.options(delay=timedelta(minutes=5)).enqueue(1, 2)
    eta = datetime.now(UTC) + timedelta(hours=1)
    e = add.options(eta=eta, meta={"origin": "test"}).enqueue(1, 2)
    assert d.status is JobState.DELAYED and e.status is JobState.DELAYED
    info = e.info()
    assert abs(info.ready_at.timestamp() - eta.timestamp()) < 0.002
    assert info.meta == {"origin": "test"}
    delay_s = d.info().ready_at.timestamp() - d.info().enqueued_at.timestamp()
    assert abs(delay_s - 300) < 0.002


def test_job_id_is_an_idempotency_key(app: Scheduler, client: redis.Redis) -> None:
    add = make_tasks(app)
    first = add.options(job_id="order-1").enqueue(1, 2)
    second = add.options(job_id="order-1").enqueue(5, 5)
    assert first == second
    assert first.info().args == [1, 2]
    assert client.hlen(app.queue_keys("q").jobs) == 1


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"weight": -1}, InvalidPriorityError),
        ({"time": 0}, InvalidPriorityError),
        ({"resource": math.nan}, InvalidPriorityError),
        ({"priority": math.inf}, InvalidPriorityError),
        ({"queue": "bad{queue}"}, InvalidNameError),
        ({"queue": ""}, InvalidNameError),
        ({"job_id": "has space"}, InvalidNameError),
        ({"job_id": "x" * 201}, InvalidNameError),
        ({"delay": -1}, ValidationError),
        ({"delay": 1, "eta": datetime.now(UTC)}, ValidationError),
        ({"max_attempts": 0}, ValidationError),
        ({"lease": 0}, ValidationError),
        ({"meta": {1: 2}}, PayloadError),
    ],
)
def test_rejected_enqueue_writes_nothing(
    app: Scheduler, client: redis.Redis, options: dict[str, object], error: type[Exception]
) -> None:
    add = make_tasks(app)
    add.enqueue(1, 1)
    before = snapshot(client)
    with pytest.raises(error):
        add.options(**options).enqueue(1, 2)
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "args",
    [(object(),), ({1, 2},), (math.nan,), ("x" * (1 << 20),), (b"bytes",)],
    ids=["object", "set", "nan", "too-large", "bytes"],
)
def test_bad_payload_is_refused(app: Scheduler, client: redis.Redis, args: tuple[object]) -> None:
    add = make_tasks(app)
    before = snapshot(client)
    with pytest.raises(PayloadError):
        add.enqueue(*args)  # type: ignore[arg-type]
    assert snapshot(client) == before


def test_payload_limit_is_configurable(client: redis.Redis) -> None:
    app = Scheduler(client, prefix="t", max_payload_bytes=100)
    with pytest.raises(PayloadError, match="over the limit of 100 bytes"):
        app.enqueue("m:f", args=["x" * 100])
    app.enqueue("m:f", args=["x" * 10])


def test_bulk_validates_everything_before_writing(app: Scheduler, client: redis.Redis) -> None:
    add = make_tasks(app)
    specs = [add.spec(i, i) for i in range(10)] + [JobSpec("m:f", (object(),))]
    with pytest.raises(PayloadError):
        app.enqueue_many(specs)
    assert client.keys("t:*") == []


def test_bulk_many_batches_and_queues(app: Scheduler) -> None:
    add = make_tasks(app)
    specs = [add.spec(i, i) for i in range(1200)]
    specs += [JobSpec("m:f", (i,), options=add.options(queue="b").opts) for i in range(3)]
    jobs = app.enqueue_many(specs)
    assert len(jobs) == 1203 and len({j.id for j in jobs}) == 1203
    assert jobs[0].info().args == [0, 0]
    assert jobs[-1].queue == "b"
    assert app.redis.zcard(app.queue_keys("q").ready) == 1200


def test_task_registration_errors(app: Scheduler) -> None:
    with pytest.raises(TypeError, match="unknown task option"):
        app.task(colour="red")(lambda: None)
    with pytest.raises(InvalidPriorityError):
        app.task(time=-1)(lambda: None)

    def f() -> None: ...

    app.task(name="dup:f")(f)
    with pytest.raises(ValidationError, match="already registered"):
        app.task(name="dup:f")(lambda: None)


def test_every_task_option_is_registered_as_given(app: Scheduler) -> None:
    """``TASK_OPTIONS`` is the one list of ``@app.task`` options: each one
    given at registration lands on the task, none is dropped or refused."""
    given: dict[str, object] = {
        "name": "opts:f",
        "queue": "opts",
        "weight": 2.0,
        "time": 3.0,
        "resource": 4.0,
        "priority": None,
        "alpha": 0.5,
        "min_samples": 7,
        "max_attempts": 9,
        "lease": 11.0,
        "timeout": 13.0,
        "result_ttl": 17.0,
        "backoff": Backoff(base=1.0),
        "retry_on": (KeyError,),
    }
    assert set(given) == TASK_OPTIONS
    task = app.task(**given)(lambda: None)
    assert {option: getattr(task, option) for option in TASK_OPTIONS} == given
    default = app.task(name="opts:g")(lambda: None)
    assert (default.queue, default.lease, default.result_ttl) == (
        app.default_queue,
        app.lease,
        app.result_ttl,
    )


def test_job_lookup(app: Scheduler) -> None:
    add = make_tasks(app)
    job = add.enqueue(1, 2)
    assert app.job(job.id) == job
    assert app.job(job.id, queue="q") == job
    with pytest.raises(JobNotFoundError):
        app.job("missing")
    with pytest.raises(InvalidNameError):
        app.job("bad id")


def test_generated_ids_never_start_with_a_dash() -> None:
    """An id like ``-x...`` would read as an option in ``scheduler job show ID``."""
    from scheduler.building import IdSource

    ids = IdSource()
    drawn = [ids.next() for _ in range(20_000)]
    assert all(len(i) == 16 and not i.startswith("-") for i in drawn)
    assert len(set(drawn)) == len(drawn)


NUMBER_OPTIONS = ["priority", "weight", "time", "resource", "delay", "lease", "result_ttl"]


@pytest.mark.parametrize("option", [*NUMBER_OPTIONS, "max_attempts"])
@pytest.mark.parametrize("flag", [True, False])
def test_booleans_are_not_numbers_even_after_the_equal_number_was_used(
    app: Scheduler, client: redis.Redis, option: str, flag: bool
) -> None:
    # True == 1 and False == 0 in Python: a job built with the number must not
    # let the boolean through (the template cache once keyed on equality).
    number = 1 if flag else 0
    if option in ("weight", "priority", "delay", "result_ttl") or number == 1:
        app.enqueue("m:f", **{option: number})  # type: ignore[arg-type]
    before = snapshot(client)
    with pytest.raises(ValidationError):
        app.enqueue("m:f", **{option: flag})  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        app.enqueue_many([JobSpec("m:f", options=EnqueueOptions(**{option: flag}))])  # type: ignore[arg-type]
    assert snapshot(client) == before


@pytest.mark.parametrize("first", [0.0, -0.0, 0])
def test_negative_zero_is_zero_whatever_came_first(app: Scheduler, first: float) -> None:
    # -0.0 and 0.0 are the same number (equal, same hash): both are stored
    # as "0", in whichever order the template cache sees them.
    jobs = [app.enqueue("m:f", priority=p) for p in (first, -0.0, 0.0)]
    jobs += [app.enqueue("m:f", weight=p) for p in (first, -0.0)]
    for job in jobs:
        rec = job.info().record
        assert math.copysign(1.0, rec.priority) == 1.0 and rec.priority == 0.0
        assert rec.inputs is None or math.copysign(1.0, rec.inputs[0]) == 1.0
