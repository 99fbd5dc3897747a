"""Security (``docs/operating.md``): the minimal Redis ACL, TLS defaults, URL checks.

The minimal ACL, tested:

The ``ACL SETUSER`` line is read from the docs (so the docs cannot drift from
what is tested), run on the suite's real server, and then everything the
project does runs as that user: the app's enqueue and result wait, a worker
process running a job, a cron process firing a schedule (its job run by the
worker), and every admin command. Nothing may be refused: each command exits
0 and the server's ``ACL LOG`` holds no denial for the user.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from scheduler import EnqueueOptions, ScheduleNotFoundError, Scheduler
from scheduler.backend.connection import client_from_url
from scheduler.cli import cli
from scheduler.devserver import DevServer
from scheduler.errors import ValidationError
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
USER = "sched-acl"
PASSWORD = "acl-Secret-1"
PREFIX = "acl"
APP = "tests.apps.cron_app:app"
TICK = "tests.apps.cron_app:tick"


def documented_acl() -> list[str]:
    """The docs' ``ACL SETUSER scheduler ...`` line, for USER, PASSWORD and PREFIX."""
    text = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("ACL SETUSER scheduler "))
    words = shlex.split(line)
    assert words[2] == "scheduler"
    words[2] = USER
    subst = {">CHANGE-ME": f">{PASSWORD}", "~P:*": f"~{PREFIX}:*", "&P:*": f"&{PREFIX}:*"}
    return [subst.get(word, word) for word in words]


@pytest.fixture
def acl_url(redis_server: DevServer, real_redis: redis.Redis) -> Iterator[str]:
    real_redis.execute_command(*documented_acl())
    real_redis.execute_command("ACL", "LOG", "RESET")
    try:
        yield redis_server.url.replace("redis://", f"redis://{USER}:{PASSWORD}@")
    finally:
        real_redis.execute_command("ACL", "DELUSER", USER)


def denials(admin: redis.Redis) -> list[str]:
    """The ``ACL LOG`` entries of USER, as "reason: object"."""
    entries: list[dict[str, object]] = admin.acl_log()  # type: ignore[assignment]
    return [
        f"{_s(e.get('reason'))}: {_s(e.get('object'))}"
        for e in entries
        if _s(e.get("username")) == USER
    ]


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_the_documented_user_is_confined_to_its_prefix(
    acl_url: str, real_redis: redis.Redis
) -> None:
    client = redis.Redis.from_url(acl_url)
    try:
        assert client.ping()  # redis-py's health check on idle connections
        client.set(f"{PREFIX}:probe", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("other:probe")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.flushall()
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.publish("other:channel", "x")
    finally:
        client.close()
    real_redis.execute_command("ACL", "LOG", "RESET")


def _spawn(url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SCHEDULER_TEST_URL": url,
        "SCHEDULER_TEST_PREFIX": PREFIX,
        "CRON_APP_MODE": "worker",  # declares schedule "with-worker": tick every second
    }
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out.decode(errors="replace")


ADMIN_COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["top", "--iterations", "2", "--interval", "0.1"],
    ["jobs", "list", "-q", "default", "-s", "succeeded"],
    ["jobs", "list", "-q", "other"],
    ["job", "show", "{job}"],
    ["job", "reprioritize", "{job}", "-p", "5"],
    ["job", "reprioritize", "{job}", "--weight", "3"],
    ["job", "run-now", "{job}"],
    ["job", "cancel", "{job}"],
    ["job", "retry", "{job}", "-q", "other"],
    ["job", "cancel", "{job}", "-q", "other"],
    ["retry", "-q", "other", "-s", "cancelled", "--all"],
    ["queue", "pause", "other"],
    ["queue", "resume", "other"],
    ["queue", "purge", "other", "-s", "ready", "--yes"],
    ["enqueue", TICK, "--args", '["cli"]', "-q", "other", "--delay", "1h"],
    ["workers"],
    ["workers", "-q", "default", "--json"],
    ["events", "-n", "50"],
    ["schedules", "list"],
    ["schedules", "add", TICK, "--every", "1h", "--id", "acl-s", "-q", "other"],
    ["schedules", "pause", "acl-s"],
    ["schedules", "resume", "acl-s"],
    ["schedules", "run-now", "acl-s"],
    ["schedules", "remove", "acl-s", "--yes"],
]


@pytest.mark.slow
def test_everything_runs_as_the_documented_acl_user(acl_url: str, real_redis: redis.Redis) -> None:
    app = Scheduler.from_url(acl_url, prefix=PREFIX)
    worker = _spawn(acl_url, "worker", APP, "--concurrency", "2")
    cron = _spawn(acl_url, "cron", APP)
    try:
        # the app: enqueue, then wait for the result (pub/sub on P:{queue}:finished)
        job = app.enqueue(TICK, ["hello"])
        assert job.result(timeout=30) == "hello"

        # cron fires the declared schedule; the worker runs its jobs
        def fired_and_ran() -> bool:
            try:  # the cron process declares the schedule when it starts
                last = app.schedules.get("with-worker").last_job_id
            except ScheduleNotFoundError:
                return False
            return bool(last) and app.job(last).status.value == "succeeded"

        wait_until(fired_and_ran, timeout=30)
        # every admin command, as that user
        delayed = app.enqueue(TICK, ["later"], options=EnqueueOptions(queue="other", delay=3600))
        runner = CliRunner(env={"REDIS_URL": acl_url, "SCHEDULER_PREFIX": PREFIX})
        for words in ADMIN_COMMANDS:
            args = [w.replace("{job}", delayed.id) for w in words]
            result = runner.invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, (args, result.output)
    finally:
        worker_rc, worker_out = _stop(worker)
        cron_rc, cron_out = _stop(cron)
        app.close()
    assert worker_rc == 0, worker_out
    assert cron_rc == 0, cron_out
    for out in (worker_out, cron_out):
        assert "NOPERM" not in out and "no permissions" not in out, out
    assert denials(real_redis) == []


def test_tls_urls_verify_the_server_by_default() -> None:
    client = client_from_url("rediss://redis.internal:6380/0?ssl_ca_certs=/etc/ssl/ca.pem")
    options = client.connection_pool.connection_kwargs
    assert options["ssl_cert_reqs"] == "required"
    assert options["ssl_check_hostname"] is True
    assert options["ssl_ca_certs"] == "/etc/ssl/ca.pem"
    # the URL can still turn checks off, explicitly
    relaxed = client_from_url("rediss://h:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false")
    assert relaxed.connection_pool.connection_kwargs["ssl_check_hostname"] is False
    # and TLS options on a plain URL are refused, not ignored
    with pytest.raises(ValidationError, match="rediss://"):
        client_from_url("redis://h:6379/0?ssl_ca_certs=/etc/ssl/ca.pem")


@pytest.mark.parametrize(
    "url",
    ["", "redis://h/abc", "redis://h:6379/0?foo=1", "redis://h:x/0", "http://h/0"],
)
def test_the_library_refuses_a_bad_url_before_connecting(url: str) -> None:
    with pytest.raises(ValidationError):
        Scheduler.from_url(url)
