"""Bad input and damaged data (issue 11, items 1, 2, 4-7): typed errors,
documented bounds, nothing written on refusal, exact round trips, and a worker
that records whatever a task returns or raises and keeps running."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler import (
    Backoff,
    InvalidNameError,
    InvalidScheduleError,
    JobSpec,
    JobState,
    PayloadError,
    Scheduler,
    UnknownOptionError,
    ValidationError,
    defaults,
)
from scheduler.devserver import DevServer
from scheduler.serialization import (
    MAX_DEPTH,
    decode_error,
    decode_payload,
    encode_error,
    encode_result,
)
from tests.helpers import wait_until
from tests.test_cli_common import PREFIX as CLI_PREFIX
from tests.test_cli_common import invoke

ROOT = Path(__file__).resolve().parent.parent


def nested(levels: int) -> list[Any]:
    """A list nested ``levels`` deep: ``nested(2) == [[]]``."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def refused(client: redis.Redis, call: Any, error: type[Exception]) -> Exception:
    """``call()`` raises ``error`` and writes no key."""
    before = sorted(client.scan_iter("*"))
    with pytest.raises(error) as info:
        call()
    assert sorted(client.scan_iter("*")) == before
    return info.value


# -- item 1: what a task raises or returns is recorded; the worker survives --


@pytest.fixture
def iapp(redis_server: DevServer, real_redis: redis.Redis) -> Iterator[Scheduler]:
    os.environ["SCHEDULER_TEST_URL"] = redis_server.url
    os.environ["SCHEDULER_TEST_PREFIX"] = "i"
    sys.modules.pop("tests.apps.inputs_app", None)
    # Not ``from tests.apps import inputs_app``: after the pop that returns
    # the package's attribute, an earlier import's module (its app closed).
    inputs_app = importlib.import_module("tests.apps.inputs_app")

    yield inputs_app.app
    inputs_app.app.close()


@pytest.mark.slow
def test_worker_records_text_that_is_not_unicode_and_keeps_running(iapp: Scheduler) -> None:
    from tests.apps.inputs_app import ok, raise_bad_text, raise_unprintable, return_bad_text

    raised = raise_bad_text.enqueue()
    returned = return_bad_text.enqueue()
    unprintable = raise_unprintable.enqueue()
    worker = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "worker", "tests.apps.inputs_app:app"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        finished = (JobState.DEAD, JobState.SUCCEEDED)
        wait_until(
            lambda: (
                worker.poll() is not None
                or all(j.status in finished for j in (raised, returned, unprintable))
            ),
            timeout=30,
        )
        assert worker.poll() is None, "the worker exited"
        # ... and it still runs jobs afterwards.
        assert ok.enqueue(7).result(timeout=20) == 7
        assert worker.poll() is None
    finally:
        worker.terminate()
        out = worker.communicate(timeout=30)[0].decode(errors="replace")
    # Dead jobs are logged at ERROR with their traceback, indented under
    # their line; a traceback of the worker itself would start a line.
    assert not any(line.startswith("Traceback") for line in out.splitlines()), out
    error = raised.info().error
    assert error is not None and error["escaped"] is True
    assert error["error"] == "RuntimeError: cannot open \\udcff"
    assert "\\udcff" in error["traceback"]
    error = returned.info().error
    assert error is not None and error["type"] == "PayloadError"
    assert "not valid Unicode" in error["error"]
    error = unprintable.info().error
    assert error is not None and error["type"] == "UnprintableError"


def test_error_records_always_encode() -> None:
    text = encode_error("bad \udcff", "E\ud800", "tb \udcff", 2)
    text.encode("utf-8")  # storable
    record = decode_error(text)
    assert record == {
        "error": "bad \\udcff",
        "type": "E\\ud800",
        "traceback": "tb \\udcff",
        "attempt": 2,
        "escaped": True,
    }
    assert "escaped" not in decode_error(encode_error("fine é", "E"))


# -- item 2: Backoff and retry_on are validated completely at declaration -----


@pytest.mark.parametrize(
    "options",
    [
        {"maximum": 0.5},  # below the default base
        {"base": 10, "maximum": 5},
        {"factor": 0.5},
        {"factor": float("inf")},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"base": float("nan")},
        {"maximum": 1e300},  # over MAX_DURATION
        {"base": True},
        {"factor": "2"},
        {"maximum": 10**400},
    ],
)
def test_backoff_rejects_what_a_retry_could_not_apply(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Backoff(**options)


def test_backoff_edges_are_accepted_and_usable() -> None:
    for policy in (
        Backoff(base=0, maximum=0, factor=1, jitter=1),
        Backoff(base=defaults.MAX_DURATION, maximum=defaults.MAX_DURATION, factor=1e300, jitter=0),
    ):
        for attempt in (1, 2, 10**6):
            assert 0 <= policy.delay(attempt) <= policy.maximum


@pytest.mark.parametrize(
    "options",
    [
        {"backoff": "fast"},
        {"backoff": 5},
        {"retry_on": "ValueError"},
        {"retry_on": ValueError("x")},
        {"retry_on": (ValueError, int)},
        {"retry_on": [object]},
        {"retry_on": None},
    ],
)
def test_task_registration_checks_backoff_and_retry_on(
    real_app: Scheduler, options: dict[str, Any]
) -> None:
    def fn() -> None: ...

    refused(real_app.redis, lambda: real_app.task(**options)(fn), ValidationError)
    assert real_app.tasks == {}


def test_retry_on_a_bare_class_or_a_sequence(real_app: Scheduler) -> None:
    @real_app.task(retry_on=KeyError)
    def one() -> None: ...

    @real_app.task(retry_on=[KeyError, OSError])
    def two() -> None: ...

    @real_app.task(retry_on=())
    def never() -> None: ...

    assert one.retry_on == (KeyError,)
    assert two.retry_on == (KeyError, OSError)
    assert never.retry_on == ()
    with pytest.raises(ValidationError):
        one.retry_on = "KeyError"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        one.backoff = "fast"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        real_app.backoff = "fast"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        Scheduler(real_app.redis, prefix="t2", backoff="fast")  # type: ignore[arg-type]


# -- item 4: a refused queue call writes nothing; bad registry members are skipped --


@pytest.mark.parametrize(
    "call",
    [
        lambda app: app.pause("bad queue"),
        lambda app: app.resume("bad queue"),
        lambda app: app.set_aging("bad queue", 1.0),
        lambda app: app.set_aging("{x}", 1.0),
        lambda app: app.set_aging("ok", float("nan")),
        lambda app: app.pause(""),
        lambda app: app.pause(5),
    ],
)
def test_refused_queue_calls_write_nothing(real_app: Scheduler, call: Any) -> None:
    refused(real_app.redis, lambda: call(real_app), ValidationError)


def test_a_bad_registry_member_is_skipped_and_logged(
    redis_server: DevServer, real_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = Scheduler(real_redis, prefix=CLI_PREFIX)
    job = app.enqueue("m:f", queue="good", job_id="j1")
    app.pause("good")
    real_redis.sadd(app.keys.queues, "bad queue", b"\xff\xfe", "{x}")  # left by an older version
    with caplog.at_level(logging.WARNING, logger="scheduler.backend"):
        assert app.queue_names() == ["good"]
    assert "bad queue" in caplog.text
    assert app.job("j1").queue == "good"
    assert job.info().state is JobState.READY
    for args in (("status", "--json"), ("job", "show", "j1"), ("events", "--json")):
        result = invoke(redis_server.url, *args)
        assert result.exit_code == 0, (args, result.output)
        assert "Traceback" not in result.output


# -- item 5: documented upper bounds, checked before anything is written -------

YEAR_9999 = datetime(9999, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "options",
    [
        {"delay": 1e12},
        {"delay": 1e300},
        {"delay": defaults.MAX_DURATION + 1},
        {"delay": 10**400},
        {"delay": timedelta.max},
        {"eta": datetime.max},
        {"eta": datetime.max.replace(tzinfo=UTC)},
        {"eta": YEAR_9999 + timedelta(milliseconds=1)},
        {"eta": datetime.min},
        {"eta": datetime(1969, 12, 31, tzinfo=UTC)},
        {"lease": 1e300},
        {"lease": timedelta(days=365 * 101)},
        {"result_ttl": 1e300},
        {"max_attempts": 10**30},
        {"max_attempts": defaults.MAX_ATTEMPTS_LIMIT + 1},
    ],
)
def test_values_beyond_the_bounds_are_refused(real_app: Scheduler, options: dict[str, Any]) -> None:
    refused(real_app.redis, lambda: real_app.enqueue("m:f", **options), ValidationError)


@pytest.mark.parametrize(
    "options",
    [
        {"delay": defaults.MAX_DURATION},
        {"eta": YEAR_9999},
        {"eta": datetime(1970, 1, 1, tzinfo=UTC)},
        {"lease": defaults.MAX_DURATION},
        {"result_ttl": defaults.MAX_DURATION},
        {"max_attempts": defaults.MAX_ATTEMPTS_LIMIT},
    ],
)
def test_values_at_the_bounds_are_stored_and_read_back(
    redis_server: DevServer, real_redis: redis.Redis, options: dict[str, Any]
) -> None:
    app = Scheduler(real_redis, prefix=CLI_PREFIX)
    job = app.enqueue("m:f", queue="q", job_id="edge", **options)
    info = job.info()
    if "eta" in options:
        assert info.ready_at == max(options["eta"], info.enqueued_at)
    if "max_attempts" in options:
        assert info.max_attempts == options["max_attempts"]
    for args in (("job", "show", "edge"), ("jobs", "list", "-q", "q")):
        result = invoke(redis_server.url, *args)
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "options",
    [{"jitter": 1e300}, {"misfire_grace": 1e300}, {"jitter": defaults.MAX_DURATION * 2}],
)
def test_schedule_durations_are_bounded(real_app: Scheduler, options: dict[str, Any]) -> None:
    refused(
        real_app.redis,
        lambda: real_app.every(60, "m:f", id="s", declare=False, **options),
        InvalidScheduleError,
    )
    with pytest.raises(InvalidScheduleError):
        real_app.every(1e300, "m:f", id="s", declare=False)


# -- item 6: every rejection is a documented type, and writes nothing -----------


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda app: app.enqueue("m:f", ["\ud800"]), PayloadError),
        (lambda app: app.enqueue("m:f", kwargs={"k": "\udcff"}), PayloadError),
        (lambda app: app.enqueue("m:f", meta={"a": "\udcff"}), PayloadError),
        (lambda app: app.enqueue("m:f", delay=10**400), ValidationError),
        (lambda app: app.enqueue("m:f", eta=datetime.min), ValidationError),
        (lambda app: app.enqueue("m:f", eta="tomorrow"), ValidationError),
        (lambda app: app.enqueue("m:f", lease=[1]), ValidationError),
        (lambda app: app.enqueue("m:f", priority=[1]), ValidationError),
        (lambda app: app.enqueue("m:f", max_attempts={}), ValidationError),
        (lambda app: app.enqueue("m:f", dealy=5), UnknownOptionError),
        (lambda app: app.enqueue("m:f", options={"delay": 5}), ValidationError),
        (lambda app: app.enqueue("m:f", meta=[1]), PayloadError),
        (lambda app: app.enqueue(5), InvalidNameError),
        (lambda app: app.enqueue_many([1]), ValidationError),
        (lambda app: app.enqueue_many([JobSpec("m:f"), "m:f"]), ValidationError),
        (lambda app: app.enqueue_many(5), ValidationError),
        (lambda app: app.enqueue_many([JobSpec("m:f", options=5)]), ValidationError),  # type: ignore[arg-type]
        (lambda app: app.every(60, "m:f", id="s", tz=["Europe/Paris"]), InvalidScheduleError),
        (lambda app: app.every(60, "m:f", id="s", tz={}), InvalidScheduleError),
        (lambda app: app.every(60, "m:f", id="s", colour="red"), UnknownOptionError),
        (lambda app: app.task(colour="red")(len), UnknownOptionError),
    ],
)
def test_rejections_are_documented_types(real_app: Scheduler, call: Any, error: type) -> None:
    exc = refused(real_app.redis, lambda: call(real_app), error)
    assert isinstance(exc, ValidationError)


def test_unknown_option_is_still_a_type_error(real_app: Scheduler) -> None:
    with pytest.raises(TypeError):
        real_app.enqueue("m:f", dealy=5)


# -- item 7: no silent change of data -------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [{1: "a"}],
        [{"x": [{1: "a", "1": "b"}]}],
        [{False: None}],
        [[{None: 1}]],
        [{(1, 2): 3}],
    ],
)
def test_non_str_keys_at_any_depth_are_refused(real_app: Scheduler, args: list[Any]) -> None:
    refused(real_app.redis, lambda: real_app.enqueue("m:f", args), PayloadError)
    refused(real_app.redis, lambda: real_app.enqueue("m:f", meta={"m": args[0]}), PayloadError)


def test_nesting_is_limited_and_the_limit_round_trips(
    redis_server: DevServer, real_redis: redis.Redis
) -> None:
    app = Scheduler(real_redis, prefix=CLI_PREFIX)
    # The payload [args, kwargs] is level 1, args level 2: an argument nested
    # MAX_DEPTH - 2 deep (itself included) is the deepest accepted.
    deepest = nested(MAX_DEPTH - 2)
    job = app.enqueue("m:f", [deepest], job_id="deep")
    assert job.info().args == [deepest]
    result = invoke(redis_server.url, "job", "show", "deep", "--json")
    assert result.exit_code == 0, result.output[-500:]
    for too_deep in (nested(MAX_DEPTH - 1), nested(1100), nested(50_000)):
        refused(real_redis, lambda v=too_deep: app.enqueue("m:f", [v]), PayloadError)
    circular: list[Any] = []
    circular.append(circular)
    refused(real_redis, lambda: app.enqueue("m:f", [circular]), PayloadError)


def test_results_that_would_change_fail_the_job_with_the_reason(real_app: Scheduler) -> None:
    from tests.helpers import running

    @real_app.task(max_attempts=1)
    def int_keys() -> dict[int, str]:
        return {1: "a"}

    @real_app.task(max_attempts=1)
    def deep() -> list[Any]:
        return nested(MAX_DEPTH + 1)

    jobs = [int_keys.enqueue(), deep.enqueue()]
    with running(real_app, concurrency=2):
        wait_until(lambda: all(j.status is JobState.DEAD for j in jobs))
    for job in jobs:
        error = job.info().error
        assert error is not None and error["type"] == "PayloadError", error


def test_invalid_utf8_in_a_record_is_reported_as_damaged(real_app: Scheduler) -> None:
    job = real_app.enqueue("m:f", ["é"], job_id="j")
    jobs_key = real_app.queue_keys("default").jobs
    raw = real_app.redis.hget(jobs_key, "j")
    assert raw is not None
    real_app.redis.hset(jobs_key, "j", raw.replace("é".encode(), b"\xff"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        job.info()


def test_the_shortcuts_for_no_arguments_and_no_result_keep_the_rules() -> None:
    args, kwargs = decode_payload("[[],{}]")
    assert (args, kwargs) == ([], {})
    args.append(1)
    kwargs["k"] = 1  # each decode gets its own containers
    assert decode_payload("[[],{}]") == ([], {})
    assert encode_result(None) == "null"
    with pytest.raises(PayloadError, match="over the limit of 3 bytes"):
        encode_result(None, 3)
