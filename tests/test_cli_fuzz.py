"""Fuzz of the admin CLI: whatever the arguments, the exit code is one the
docs list (0 done, 1 not found / nothing done / failure, 2 usage), a failure
is one ``Error: ...`` line on stderr, never a traceback, and never the
"unexpected error" safety net (which would mean an unhandled case).

Runs in-process (click's CliRunner) against the suite's real Redis server,
on a prefix holding a few jobs in several states and a schedule.
"""

from __future__ import annotations

import json

import pytest
import redis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import EnqueueOptions, Scheduler
from scheduler.cli import cli
from scheduler.devserver import DevServer
from tests.test_cli_common import make_dead

PREFIX = "fz"

# (command words, positional arguments, options taking a value, flags, fixed extras)
COMMANDS: list[tuple[tuple[str, ...], int, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = [
    (("status",), 0, ("-q",), ("--json",), ()),
    (("top",), 0, ("-q", "--interval"), (), ("--iterations", "1")),
    (("jobs", "list"), 0, ("-q", "-s", "-n", "--offset"), ("--json",), ()),
    (("job", "show"), 1, ("-q",), ("--json",), ()),
    (("job", "cancel"), 1, ("-q", "--reason"), ("--json",), ()),
    (("job", "retry"), 1, ("-q",), ("--json",), ()),
    (
        ("job", "reprioritize"),
        1,
        ("-q", "-p", "--weight", "--time", "--resource"),
        ("--json",),
        (),
    ),
    (("job", "run-now"), 1, ("-q",), ("--json",), ()),
    (("retry",), 0, ("-q", "-s", "--task"), ("--all", "--json"), ()),
    (("queue", "pause"), 1, (), ("--json",), ()),
    (("queue", "resume"), 1, (), ("--json",), ()),
    (("queue", "purge"), 1, ("-s",), ("--json",), ("--yes",)),
    (
        ("enqueue",),
        1,
        (
            "--args",
            "--kwargs",
            "-q",
            "--job-id",
            "--delay",
            "--at",
            "-p",
            "--weight",
            "--time",
            "--resource",
            "--max-attempts",
            "--lease",
            "--meta",
        ),
        ("--json",),
        (),
    ),
    (("workers",), 0, ("-q",), ("--json",), ()),
    (("events",), 0, ("-q", "-n"), ("--json",), ()),
    (("schedules", "list"), 0, ("-q",), ("--json",), ()),
    (
        ("schedules", "add"),
        1,
        (
            "--cron",
            "--every",
            "--id",
            "-q",
            "--args",
            "--tz",
            "--start",
            "--end",
            "--jitter",
            "--misfire",
            "--misfire-grace",
            "-p",
            "--max-attempts",
        ),
        ("--paused", "--json"),
        (),
    ),
    (("schedules", "pause"), 1, ("-q",), ("--json",), ()),
    (("schedules", "resume"), 1, ("-q",), ("--json",), ()),
    (("schedules", "run-now"), 1, ("-q",), ("--json",), ()),
    (("schedules", "remove"), 1, ("-q",), ("--json",), ("--yes",)),
]

#: Values that have broken CLIs before: huge and non-finite numbers, bad
#: JSON, lone surrogates, names that are not names, calendar edges.
TRICKY = [
    "",
    " ",
    "-1",
    "0",
    "1",
    "0.5",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "1e300",
    "99999999999999999999",
    str(2**63),
    str(2**64 + 1),
    "a b",
    "a\nb",
    "{x}",
    "\ud800",
    '["\\ud800"]',
    '{"\\udfff": 1}',
    "[" * 3000 + "]" * 3000,
    "[",
    "[]",
    "{}",
    '{"a": [1, 2]}',
    "null",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "2030-01-02T03:04:05+00:00",
    "5m",
    "500ms",
    "1e20s",
    "99999999999999999999d",
    "* * * * *",
    "*/0 * * * *",
    "61 * * * *",
    "Europe/Paris",
    "Not/AZone",
    "ready",
    "dead",
    "done",
    "skip",
    "default",
    "q1",
    "m:f",
    "j-ready",
    "j-delayed",
    "s1",
    "cron:s1",
]

values = st.one_of(
    st.sampled_from(TRICKY),
    st.text(max_size=12),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    words, positional, options, flags, extras = draw(st.sampled_from(COMMANDS))
    args = list(words)
    args += [draw(values) for _ in range(positional)]
    for option in draw(st.lists(st.sampled_from(options), unique=True)) if options else []:
        args += [option, draw(values)]
    args += draw(st.lists(st.sampled_from(flags), unique=True)) if flags else []
    args += list(extras)
    if draw(st.integers(0, 9)) == 0:  # now and then a bad prefix
        args += ["--prefix", draw(values)]
    return args


@pytest.fixture
def seeded(redis_server: DevServer, real_redis: redis.Redis) -> str:
    """The server's URL, with jobs in several states and a schedule under PREFIX."""
    app = Scheduler(real_redis, prefix=PREFIX)
    make_dead(app, 2, queue="q1")
    app.enqueue("m:f", [1], options=EnqueueOptions(queue="q1", job_id="j-ready"))
    app.enqueue("m:f", [2], options=EnqueueOptions(queue="q1", job_id="j-delayed", delay=600))
    app.enqueue("m:g", [1, 2], options=EnqueueOptions(job_id="j-default"))
    runner = CliRunner(env={"REDIS_URL": redis_server.url, "SCHEDULER_PREFIX": PREFIX})
    added = runner.invoke(cli, ["schedules", "add", "m:f", "--every", "1h", "--id", "s1"])
    assert added.exit_code == 0, added.output
    return redis_server.url


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=command_lines())
def test_admin_commands_exit_as_documented_in_one_line(seeded: str, args: list[str]) -> None:
    runner = CliRunner(env={"REDIS_URL": seeded, "SCHEDULER_PREFIX": PREFIX, "SCHEDULER_DEBUG": ""})
    result = runner.invoke(cli, args)
    shown = json.dumps(args)[:300]
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        shown,
        repr(result.exception),
    )
    assert result.exit_code in (0, 1, 2), (shown, result.exit_code, result.output)
    assert "Traceback" not in result.output, (shown, result.output)
    if result.exit_code != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (shown, result.stderr)
        assert lines[0].startswith("Error: "), (shown, lines)
        assert "(a bug;" not in lines[0], (shown, lines[0])  # the safety net
