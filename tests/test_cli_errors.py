"""Bad input and damaged data in the admin CLI: one line, the documented exit
code, never a traceback, and nothing written when input is refused.

Exit codes (docs/operating.md): 1 not found / nothing done / damaged record
/ Redis failure / unexpected error; 2 usage (bad option, URL, JSON, name,
out-of-range value).
"""

from __future__ import annotations

import pytest
import redis

from scheduler import EnqueueOptions, Scheduler
from scheduler.backend.record import (
    FIELD_COUNT,
    I_ATTEMPTS,
    I_ENQUEUED_MS,
    I_INPUTS,
    I_OPTIONS,
    I_PRIORITY,
    I_READY_MS,
    I_STATE,
    I_VERSION,
    SEP,
)
from scheduler.cli import status as status_module
from scheduler.devserver import DevServer
from tests.test_cli_common import Run, capp, invoke, one_line_error, run

__all__ = ["capp", "run"]  # fixtures imported for pytest


def _port(server: DevServer) -> str:
    return server.url.rsplit(":", 1)[1].split("/")[0]


# -- connection URL --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("redis://127.0.0.1:abc/0", "Port"),
        ("redis://127.0.0.1:{port}/0?foo=bar", "unknown option 'foo'"),
        ("redis://127.0.0.1:{port}/0?socket_timeout=soon", "socket_timeout"),
        ("redis://127.0.0.1:{port}/abc", "must be a number"),
        ("redis://127.0.0.1:{port}/0?ssl_ca_certs=/ca.pem", "rediss://"),
        ("redis://127.0.0.1:99999/0", "out of range"),
        ("http://127.0.0.1:{port}/0", "schemes"),
    ],
)
def test_bad_url_is_one_line_exit_2(redis_server: DevServer, url: str, needle: str) -> None:
    url = url.format(port=_port(redis_server))
    one_line_error(invoke(url, "status"), 2, "bad --url/REDIS_URL", needle)
    one_line_error(invoke(redis_server.url, "status", "--url", url), 2, needle)


def test_url_password_is_masked_in_url_errors(redis_server: DevServer) -> None:
    result = invoke(f"redis://u:s3cret@127.0.0.1:{_port(redis_server)}/x", "status")
    one_line_error(result, 2, "***")
    assert "s3cret" not in result.output


def test_empty_redis_url_is_an_error_not_the_default(redis_server: DevServer) -> None:
    one_line_error(invoke("", "status"), 2, "REDIS_URL", "empty")
    one_line_error(invoke(redis_server.url, "--url", "", "status"), 2, "--url", "empty")
    # an explicit --url still wins over an empty environment variable
    assert invoke("", "status", "--url", redis_server.url).exit_code == 0
    one_line_error(invoke(redis_server.url, "status", prefix=""), 2, "SCHEDULER_PREFIX")


# -- usage errors: one line, shortened centrally ---------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["status", "--bogus"], " status --help"),
        (["jobs", "list"], " jobs list --help"),
        (["jobs", "list", "-q", "a", "-s", "nope"], " jobs list --help"),
        (["job", "show"], " job show --help"),
        (["nope"], "--help"),
        (["--bogus", "status"], "--help"),
        (["queue", "purge", "q"], " queue purge --help"),
        (["enqueue", "m:f", "-p", "high"], " enqueue --help"),
        (["schedules", "add", "m:f", "--misfire", "x"], " schedules add --help"),
        (["worker", "--bogus"], " worker --help"),
        (["cron", "--bogus"], " cron --help"),
    ],
)
def test_usage_errors_are_one_line_with_a_hint(run: Run, args: list[str], hint: str) -> None:
    one_line_error(run(*args), 2, hint)


def test_group_without_subcommand_still_shows_help(run: Run) -> None:
    result = run("jobs")
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


# -- enqueue / schedules: refused input writes nothing ---------------------------


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--args", DEEP], "nested too deeply"),
        (["--args", '["\\ud800"]'], "not valid Unicode"),
        (["--kwargs", '{"\\udfff": 1}'], "not valid Unicode"),
        (["--meta", '{"a": "\\ud800"}'], "not valid Unicode"),
        (["--at", "0001-01-01T00:00:00"], "out of range"),
        (["--delay", "99999999999999999999"], "too large"),
        (["--delay", "1e400"], "not a duration"),
        (["--lease", "99999999999999999999"], "too large"),
    ],
)
def test_enqueue_bad_input_is_exit_2_and_writes_nothing(
    run: Run, real_redis: redis.Redis, args: list[str], needle: str
) -> None:
    one_line_error(run("enqueue", "m:f", *args), 2, needle)
    assert real_redis.dbsize() == 0


def test_huge_schedule_interval_is_exit_2_and_writes_nothing(
    run: Run, real_redis: redis.Redis
) -> None:
    result = run("schedules", "add", "m:f", "--every", "99999999999999999999", "--id", "s1")
    one_line_error(result, 2, "--every", "too large")
    assert real_redis.dbsize() == 0


# -- numeric ranges and names ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list", "-q", "default", "--offset", "99999999999999999999"],
        ["jobs", "list", "-q", "default", "--offset", str(2**63)],
        ["jobs", "list", "-q", "default", "-n", "99999999999999999999"],
        ["events", "-n", str(2**63)],
        ["top", "--interval", "1e300", "--iterations", "2"],
    ],
)
def test_out_of_range_numbers_are_exit_2(run: Run, capp: Scheduler, args: list[str]) -> None:
    capp.enqueue("m:f")
    one_line_error(run(*args), 2, "range")


def test_largest_offset_is_accepted(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f")
    result = run("jobs", "list", "-q", "default", "--offset", str(2**32 - 1), "--json")
    assert result.exit_code == 0, result.output


def test_workers_queue_name_is_validated(run: Run) -> None:
    one_line_error(run("workers", "-q", "a b"), 2, "invalid queue name")


# -- unreadable records ------------------------------------------------------------

DAMAGE = {
    "priority": (I_PRIORITY, "abc"),
    "state": (I_STATE, "Z"),
    "attempts": (I_ATTEMPTS, "x"),
    "options": (I_OPTIONS, "1,2"),
    "ready": (I_READY_MS, "9" * 30),
    "version": (I_VERSION, "7"),
    "enqueued": (I_ENQUEUED_MS, "1e400"),
    "inputs": (I_INPUTS, "1,2"),
}

JOB_COMMANDS = [
    ["show"],
    ["show", "--json"],
    ["cancel"],
    ["retry"],
    ["run-now"],
    ["reprioritize", "-p", "3"],
    ["reprioritize", "--weight", "2"],
]


def _damage(app: Scheduler, job_id: str, index: int, value: str) -> None:
    app.enqueue("m:f", [1], options=EnqueueOptions(queue="q", job_id=job_id, delay=100))
    key = app.queue_keys("q").jobs
    raw = app.redis.hget(key, job_id)
    assert raw is not None
    fields = (raw.decode() if isinstance(raw, bytes) else str(raw)).split(SEP, FIELD_COUNT - 1)
    fields[index] = value
    app.redis.hset(key, job_id, SEP.join(fields))


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_job_commands_on_a_damaged_record_exit_1_in_one_line(
    run: Run, capp: Scheduler, damage: str
) -> None:
    _damage(capp, damage, *DAMAGE[damage])
    capp.redis.hset(capp.queue_keys("q").jobs, "short", "1\x1fR")
    for job_id in (damage, "short"):
        for command in JOB_COMMANDS:
            for queue in (["-q", "q"], []):
                result = run("job", command[0], job_id, *command[1:], *queue)
                assert result.exit_code in (0, 1), (job_id, command, result.output)
                if result.exit_code == 1:
                    one_line_error(result, 1)


def test_damaged_record_message_names_the_job(run: Run, capp: Scheduler) -> None:
    _damage(capp, "j1", I_PRIORITY, "abc")
    one_line_error(run("job", "show", "j1", "-q", "q"), 1, "j1", "damaged record")


# -- the safety net ----------------------------------------------------------------


def test_an_unexpected_error_is_one_line_unless_debugging(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise TypeError("boom")

    monkeypatch.setattr(status_module, "overview", broken)
    one_line_error(run("status"), 1, "unexpected TypeError: boom", "SCHEDULER_DEBUG")
    monkeypatch.setenv("SCHEDULER_DEBUG", "1")
    with pytest.raises(TypeError):
        run("status")


def test_error_messages_with_newlines_stay_on_one_line(run: Run) -> None:
    one_line_error(run("job", "show", "a\nb"), 2, "invalid job id")
