"""Hypothesis fuzz of the public API on a real server (issue 11).

The property, for ``enqueue``, ``enqueue_many``, ``pause``/``resume``/
``set_aging``, task registration and :class:`Backoff`: a call either succeeds
and what it stored comes back exactly (``job.info()``; a result through the
worker's encoder), or it raises a documented :class:`ValidationError`
subclass and writes no key. For payloads a small model predicts which of the
two must happen (docs/design.md, "Limits").
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import Backoff, EnqueueOptions, JobSpec, Scheduler, ValidationError, defaults
from scheduler.errors import PayloadError
from scheduler.serialization import MAX_DEPTH, decode_error, decode_result
from scheduler.worker.execution import run_task

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PREFIX = "f"

# -- values: JSON and almost-JSON -------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=8)  # lone surrogates too
floats = st.floats(allow_nan=True, allow_infinity=True)
huge_ints = st.integers(min_value=4000, max_value=4400).map(lambda n: 10**n)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_ints, floats, any_text, any_text)
odd_keys = st.one_of(st.integers(-2, 2), st.booleans(), st.none(), st.tuples(st.integers()))
keys = st.one_of(any_text, any_text, any_text, odd_keys)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)


def deep(levels: int, leaf: object) -> object:
    value = leaf
    for _ in range(levels - 1):
        value = [value]
    return value


deep_values = st.builds(deep, st.integers(MAX_DEPTH - 4, MAX_DEPTH + 2), scalars)
weird = st.sampled_from([object(), {1, 2}, b"bytes", sys, 1j, Ellipsis])
arguments = st.one_of(values, values, values, deep_values, weird)


class RefusedError(Exception):
    """The model's verdict: the API must refuse this value."""


def expected(value: object, depth: int) -> object:
    """What ``value`` at nesting level ``depth`` comes back as after a round
    trip, or :class:`RefusedError` (restated from the docs, not imported)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) >= 10**4300:  # Python's int <-> str digit limit
            raise RefusedError
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RefusedError
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RefusedError from None
        return value
    if depth > MAX_DEPTH:
        raise RefusedError
    if isinstance(value, list | tuple):
        return [expected(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise RefusedError
        return {expected(k, depth): expected(v, depth + 1) for k, v in value.items()}
    raise RefusedError


def same(a: object, b: object) -> bool:
    """Exactly equal: same types at every level, floats bit for bit (-0.0 too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        assert isinstance(b, float)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


# -- the harness ------------------------------------------------------------------


def keys_of(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter("*"))


def outcome(client: redis.Redis, call: Callable[[], object]) -> tuple[object, Exception | None]:
    """Run ``call`` on an empty server; a refusal must be documented and write nothing."""
    client.flushall()
    try:
        return call(), None
    except ValidationError as exc:  # every documented refusal is one
        assert keys_of(client) == [], f"{exc!r} but keys were written"
        return None, exc


def only_queue_keys(client: redis.Redis, queue: str) -> None:
    """Everything written is the queue registry or under the queue's hash tag."""
    for key in keys_of(client):
        text = key.decode()
        assert text == f"{PREFIX}:queues" or text.startswith(f"{PREFIX}:{{{queue}}}:"), text


@pytest.fixture
def fapp(real_redis: redis.Redis) -> Scheduler:
    return Scheduler(real_redis, prefix=PREFIX)


# -- enqueue: payloads --------------------------------------------------------------


@FUZZ
@given(
    args=st.lists(arguments, max_size=3), kwargs=st.dictionaries(any_text, arguments, max_size=2)
)
def test_enqueue_payload_round_trips_or_is_refused(
    fapp: Scheduler, args: list[Any], kwargs: dict[str, Any]
) -> None:
    try:
        want = (expected(args, 2), {expected(k, 2): expected(v, 3) for k, v in kwargs.items()})
    except RefusedError:
        want = None
    job, error = outcome(fapp.redis, lambda: fapp.enqueue("m:f", args, kwargs))
    if want is None:
        assert isinstance(error, PayloadError), (args, kwargs, job)
        return
    assert error is None, error
    info = job.info()  # type: ignore[attr-defined]
    assert same(info.args, want[0]) and same(info.kwargs, want[1])
    only_queue_keys(fapp.redis, "default")


@FUZZ
@given(value=arguments)
def test_a_result_round_trips_or_the_job_fails_with_the_reason(value: object) -> None:
    app = Scheduler(fakeredis.FakeRedis(), prefix="x")  # no I/O: runs the task here
    app.task(name="m:echo")(lambda: value)
    result = run_task(app, "m:echo", "[[],{}]", 1)
    result.text.encode("utf-8")  # always storable
    try:
        want = expected(value, 1)
    except RefusedError:
        assert not result.ok and not result.retryable
        assert decode_error(result.text)["type"] == "PayloadError"
        return
    assert result.ok, result.error
    assert same(decode_result(result.text), want)


# -- enqueue: options -----------------------------------------------------------------

names = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,8}", fullmatch=True),
    any_text,
    st.sampled_from(["{x}", "a b", "", "-x", "a" * 65, "x\x1fy"]),
)
durations = st.one_of(
    st.none(),
    floats,
    st.integers(-5, 10**12),
    huge_ints,
    st.timedeltas(),
    st.sampled_from([defaults.MAX_DURATION, defaults.MAX_DURATION * 1.0001, True, "5", [1]]),
)
etas = st.one_of(
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from([datetime.min, datetime.max, "2030-01-01", 5]),
)
numbers = st.one_of(st.none(), floats, st.integers(), huge_ints, st.booleans(), st.just("1"))
option_sets = st.fixed_dictionaries(
    {},
    optional={
        "queue": names,
        "job_id": names,
        "delay": durations,
        "eta": etas,
        "priority": numbers,
        "weight": numbers,
        "time": numbers,
        "resource": numbers,
        "max_attempts": st.one_of(numbers, st.integers(1, 2 * defaults.MAX_ATTEMPTS_LIMIT)),
        "lease": durations,
        "result_ttl": durations,
        "meta": st.one_of(st.none(), st.dictionaries(keys, values, max_size=2), weird),
    },
)


@FUZZ
@given(options=option_sets)
def test_enqueue_options_are_stored_or_refused(fapp: Scheduler, options: dict[str, Any]) -> None:
    job, error = outcome(fapp.redis, lambda: fapp.enqueue("m:f", **options))
    if error is not None:
        return
    info = job.info()  # type: ignore[attr-defined]  # readable whatever was accepted
    queue = options.get("queue") or "default"
    assert info.queue == queue
    if options.get("job_id") is not None:
        assert info.id == options["job_id"]
    if options.get("max_attempts") is not None:
        assert info.max_attempts == options["max_attempts"]
    if options.get("priority") is not None:
        assert info.priority == options["priority"]
    if options.get("meta"):
        assert same(info.meta, expected(options["meta"], 1))
    assert info.ready_at <= datetime(9999, 1, 1, tzinfo=UTC)
    only_queue_keys(fapp.redis, queue)


@FUZZ
@given(items=st.lists(st.one_of(option_sets, option_sets, weird, names), max_size=3))
def test_enqueue_many_all_or_nothing(fapp: Scheduler, items: list[Any]) -> None:
    specs = [
        JobSpec("m:f", options=EnqueueOptions(**item)) if isinstance(item, dict) else item
        for item in items
    ]
    jobs, error = outcome(fapp.redis, lambda: fapp.enqueue_many(specs))
    if error is None:
        assert len(jobs) == len(specs)  # type: ignore[arg-type]
        for job in jobs:  # type: ignore[attr-defined]
            job.info()


# -- queue control -----------------------------------------------------------------


@FUZZ
@given(
    queue=names,
    action=st.sampled_from(["pause", "resume", "aging"]),
    aging=st.one_of(floats, st.integers(), huge_ints, st.booleans(), st.just("1")),
)
def test_queue_control_validates_before_writing(
    fapp: Scheduler, queue: str, action: str, aging: Any
) -> None:
    calls: dict[str, Callable[[], object]] = {
        "pause": lambda: fapp.pause(queue),
        "resume": lambda: fapp.resume(queue),
        "aging": lambda: fapp.set_aging(queue, aging),
    }
    # No flush between examples here: the app writes its registry entry once.
    before = keys_of(fapp.redis)
    try:
        calls[action]()
    except ValidationError:
        assert keys_of(fapp.redis) == before
        return
    for key in set(keys_of(fapp.redis)) - set(before):
        text = key.decode()
        assert text == f"{PREFIX}:queues" or text.startswith(f"{PREFIX}:{{{queue}}}:"), text
    if action != "resume":
        assert queue in fapp.queue_names()


# -- tasks and backoff -----------------------------------------------------------------

retry_values = st.one_of(
    st.sampled_from([ValueError, (KeyError, OSError), [TimeoutError], (), Exception]),
    st.sampled_from(["ValueError", ValueError("x"), int, (ValueError, 1), None, 5]),
)
some_numbers = st.one_of(floats, st.integers(), huge_ints, st.booleans(), st.just("1"))
backoffs = st.fixed_dictionaries(
    {},
    optional={
        "base": some_numbers,
        "maximum": some_numbers,
        "factor": some_numbers,
        "jitter": some_numbers,
    },
)


@FUZZ
@given(fields=backoffs, attempt=st.integers(1, 10**9))
def test_backoff_is_valid_at_construction_or_refused(fields: dict[str, Any], attempt: int) -> None:
    try:
        policy = Backoff(**fields)
    except ValidationError:
        return
    delay = policy.delay(attempt)  # never fails at retry time
    assert 0 <= delay <= policy.maximum <= defaults.MAX_DURATION


@FUZZ
@given(
    options=st.fixed_dictionaries(
        {},
        optional={
            "name": names,
            "queue": names,
            "priority": numbers,
            "weight": numbers,
            "max_attempts": numbers,
            "lease": durations.filter(lambda v: v is not None),
            "result_ttl": durations.filter(lambda v: v is not None),
            "backoff": st.one_of(backoffs, st.just(Backoff()), weird),
            "retry_on": retry_values,
        },
    )
)
def test_task_registration_is_complete_or_refused(fapp: Scheduler, options: dict[str, Any]) -> None:
    if isinstance(options.get("backoff"), dict):
        try:
            options["backoff"] = Backoff(**options["backoff"])
        except ValidationError:
            options["backoff"] = "not a backoff"

    def fn() -> None: ...

    task, error = outcome(fapp.redis, lambda: fapp.task(**options)(fn))
    if error is not None:
        return
    assert keys_of(fapp.redis) == []  # registration never writes
    assert isinstance(task.backoff, Backoff)  # type: ignore[attr-defined]
    task.backoff.delay(3)  # type: ignore[attr-defined]
    isinstance(ValueError(), task.retry_on)  # type: ignore[attr-defined]  # usable
    job = task.enqueue()  # type: ignore[attr-defined]
    job.info()
