"""Admin CLI plumbing: connection options, exit codes, one-line errors.

Also holds the helpers the other ``test_cli_*`` modules import: a runner of
the real ``scheduler`` command (click's CliRunner, in-process) against the
suite's real Redis server, and quick ways to put jobs into each state
through the Lua scripts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from scheduler import EnqueueOptions, JobSpec, Scheduler
from scheduler.backend.record import parse_record
from scheduler.cli import cli
from scheduler.cli.common import redact_url
from scheduler.cli.formats import format_age, format_time, parse_duration
from scheduler.devserver import DevServer
from scheduler.serialization import encode_error

PREFIX = "c"

Run = Callable[..., Result]


def invoke(url: str, *args: str, input: str | None = None, prefix: str = PREFIX) -> Result:
    """Run ``scheduler ARGS`` in-process with REDIS_URL / SCHEDULER_PREFIX set."""
    runner = CliRunner(env={"REDIS_URL": url, "SCHEDULER_PREFIX": prefix})
    return runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def capp(real_redis: redis.Redis) -> Scheduler:
    """A scheduler on the suite's real server with the CLI tests' prefix (flushed)."""
    return Scheduler(real_redis, prefix=PREFIX)


@pytest.fixture
def run(redis_server: DevServer, real_redis: redis.Redis) -> Run:
    """``run("status", "--json")`` -> click Result (Redis flushed first)."""

    def call(*args: str, input: str | None = None) -> Result:
        return invoke(redis_server.url, *args, input=input)

    return call


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result: Result, code: int, *needles: str) -> None:
    """The command failed with ``code`` and a single 'Error: ...' line, no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def make_dead(app: Scheduler, n: int, task: str = "m:f", queue: str = "default") -> list[str]:
    """Enqueue ``n`` jobs and fail each once with no retry: dead, with a traceback.

    Leases the best ``n`` ready jobs of ``queue``: call it before other jobs wait there."""
    specs = [JobSpec(task, (i,), options=EnqueueOptions(queue=queue)) for i in range(n)]
    ids = [j.id for j in app.enqueue_many(specs)]
    leased = lease_all(app, queue, n)
    qk = app.queue_keys(queue)
    err = encode_error("ValueError: boom", "ValueError", "Traceback (most recent call last):\n", 1)
    app.scripts.fail(qk, [(job_id, token, err, -1) for job_id, token in leased])
    return ids


def lease_all(app: Scheduler, queue: str, n: int, worker: str = "w1") -> list[tuple[str, str]]:
    """Lease up to ``n`` ready jobs of ``queue``; returns (id, token) pairs."""
    reply = app.scripts.lease(app.queue_keys(queue), n, worker, f"req-{worker}-{n}-{queue}")
    return [(job_id, parse_record(job_id, text).token) for job_id, text in reply.jobs]


# -- tests ---------------------------------------------------------------------


def test_every_command_has_help() -> None:
    runner = CliRunner()
    commands = [
        [],
        ["status"],
        ["top"],
        ["jobs", "list"],
        ["job"],
        ["job", "show"],
        ["job", "cancel"],
        ["job", "retry"],
        ["job", "reprioritize"],
        ["job", "run-now"],
        ["retry"],
        ["queue"],
        ["queue", "pause"],
        ["queue", "resume"],
        ["queue", "purge"],
        ["enqueue"],
        ["workers"],
        ["events"],
        ["worker"],
        ["schedules"],
        ["schedules", "list"],
        ["schedules", "add"],
        ["schedules", "remove"],
        ["schedules", "pause"],
        ["schedules", "resume"],
        ["schedules", "run-now"],
    ]
    for words in commands:
        result = runner.invoke(cli, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
        assert "Usage:" in result.output
    assert "--metrics-port" in runner.invoke(cli, ["worker", "--help"]).output


def test_url_and_prefix_from_env_group_or_command(redis_server: DevServer, capp: Scheduler) -> None:
    capp.enqueue("m:f", queue="qa")
    Scheduler(capp.redis, prefix="other").enqueue("m:f", queue="qb")
    # env (REDIS_URL, SCHEDULER_PREFIX)
    queues = [q["queue"] for q in as_json(invoke(redis_server.url, "status", "--json"))["queues"]]
    assert queues == ["qa"]
    # group options override the environment
    result = invoke(
        "redis://127.0.0.1:1/0", "--url", redis_server.url, "--prefix", "other", "status", "--json"
    )
    assert [q["queue"] for q in as_json(result)["queues"]] == ["qb"]
    # command options too
    result = invoke("redis://127.0.0.1:1/0", "status", "--url", redis_server.url, "--json")
    assert [q["queue"] for q in as_json(result)["queues"]] == ["qa"]


def test_redis_unreachable_is_one_line_exit_1() -> None:
    result = invoke("redis://user:secret@127.0.0.1:1/0", "status")
    one_line_error(result, 1, "cannot reach Redis", "127.0.0.1:1")
    assert "secret" not in result.output
    one_line_error(invoke("redis://127.0.0.1:1/0", "job", "show", "x"), 1, "cannot reach Redis")


def test_wrong_credentials_are_one_line_exit_1(redis_server: DevServer) -> None:
    url = redis_server.url.replace("redis://", "redis://bob:hunter2@")
    result = invoke(url, "status")
    one_line_error(result, 1, "refused the credentials")
    assert "hunter2" not in result.output


def test_bad_url_and_prefix_are_usage_errors(redis_server: DevServer) -> None:
    one_line_error(invoke("http://nope", "status"), 2, "bad --url")
    one_line_error(invoke(redis_server.url, "status", prefix="{bad}"), 2, "invalid key prefix")


def test_usage_errors_exit_2(run: Run) -> None:
    assert run("jobs", "list").exit_code == 2  # missing --queue (click's own message)
    assert run("jobs", "list", "-q", "x", "--state", "nope").exit_code == 2
    assert run("nope").exit_code == 2


def test_formatting_helpers() -> None:
    assert format_age(None) == "-"
    assert format_age(3.25) == "3.2s"
    assert format_age(125) == "2m05s"
    assert format_age(7500) == "2h05m"
    assert format_age(90000) == "1d01h"
    assert parse_duration("90", "--x") == 90
    assert parse_duration("1.5m", "--x") == 90
    assert parse_duration("2h", "--x") == 7200
    assert parse_duration("500ms", "--x") == 0.5
    assert parse_duration("1d", "--x") == 86400
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://h/0") == "redis://h/0"
    assert format_time(None) == "-"
