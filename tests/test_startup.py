"""Start-up of worker and cron processes against real Redis servers: they wait
for a server that is not there yet, and stop with one clear line (exit 1) on
wrong credentials, an ACL denial or a damaged declared schedule. Also: the
start-up line, default queues, ``Job.result()`` across a dropped connection."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    TryAgainError,
)

from scheduler import Scheduler, Worker
from scheduler.backend.startup import permanent_reason
from scheduler.devserver import DevServer
from tests.helpers import ROOT, Output, free_port, running, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-pw"


def spawn(command: str, url: str, *args: str, merge: bool = True) -> subprocess.Popen[bytes]:
    """``scheduler worker|cron APP ARGS`` with the test apps' URL set to ``url``
    (stderr merged into stdout if ``merge``)."""
    env = {
        **os.environ,
        "SCHEDULER_TEST_URL": url,
        "SCHEDULER_TEST_PREFIX": "p" if command == "worker" else "cx",
        "CRON_APP_MODE": "worker",
    }
    target = "tests.apps.procapp:app" if command == "worker" else "tests.apps.cron_app:app"
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", command, target, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def locked_server() -> Iterator[DevServer]:
    """A server whose default user needs a password, plus an ACL user ``boxed``
    that may only touch keys under ``other:``."""
    server = DevServer().start()
    admin = redis.Redis(port=server.port)
    admin.execute_command("ACL", "SETUSER", "boxed", "on", f">{PASSWORD}", "~other:*", "+@all")
    admin.config_set("requirepass", PASSWORD)  # the default user needs it from now on
    admin.close()
    try:
        yield server
    finally:
        server.stop()


def test_worker_started_before_redis_exists_waits_then_runs_a_job() -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    worker = Output(spawn("worker", url))
    server = DevServer(port=port)
    try:
        worker.wait_for("is not ready", count=2)  # one line per attempt
        assert worker.proc.poll() is None
        server.start()
        app = Scheduler.from_url(url, prefix="p")
        try:
            from tests.apps.procapp import whoami

            job = app.enqueue(whoami.name)
            assert job.result(timeout=60) == worker.proc.pid
        finally:
            app.close()
        code, out = worker.finish()
    finally:
        server.stop()
        if worker.proc.poll() is None:
            worker.proc.kill()
    assert code == 0, out
    assert "Traceback" not in out, out
    assert f"Redis at redis://127.0.0.1:{port}/0 is not ready" in out


def test_cron_started_before_redis_exists_waits_then_fires() -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    cron = Output(spawn("cron", url))
    server = DevServer(port=port)
    try:
        cron.wait_for("is not ready", count=2)
        server.start()
        client = redis.Redis(port=port)
        jobs_key = Scheduler(client, prefix="cx").queue_keys("default").jobs
        wait_until(lambda: client.hlen(jobs_key) > 0, timeout=30)
        client.close()
        code, out = cron.finish()
    finally:
        server.stop()
        if cron.proc.poll() is None:
            cron.proc.kill()
    assert code == 0 and "Traceback" not in out, out


@pytest.mark.parametrize("command", ["worker", "cron"])
@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ("", "Redis refused the credentials"),
        (":wrong-password@", "Redis refused the credentials"),
        (f"boxed:{PASSWORD}@", "the Redis ACL denies this user"),
    ],
    ids=["no-password", "wrong-password", "acl-denied"],
)
def test_permanent_start_up_errors_are_one_line_and_exit_1(
    locked_server: DevServer, command: str, credentials: str, message: str
) -> None:
    url = f"redis://{credentials}127.0.0.1:{locked_server.port}/0"
    proc = spawn(command, url, merge=False)
    _, err = proc.communicate(timeout=60)
    text = err.decode(errors="replace")
    assert proc.returncode == 1, text
    assert message in text and "cannot start" in text, text
    assert len(text.strip().splitlines()) == 1, text
    assert "Traceback" not in text and PASSWORD not in text.replace("boxed", ""), text


def test_cron_with_a_damaged_declared_schedule_is_one_line_and_exit_1(
    redis_server: DevServer, real_redis: redis.Redis
) -> None:
    # A damaged stored record is replaced by the declared one; a schedule
    # store that is not a hash cannot take it at all.
    keys = Scheduler(real_redis, prefix="cx").queue_keys("default")
    real_redis.set(keys.schedules, "not a hash")
    proc = spawn("cron", redis_server.url, merge=False)
    _, err = proc.communicate(timeout=60)
    text = err.decode(errors="replace")
    assert proc.returncode == 1, text
    assert "declared schedule 'with-worker' in queue 'default' cannot be stored" in text, text
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text, text


def test_error_classification() -> None:
    assert permanent_reason(redis.ConnectionError("refused")) is None
    assert permanent_reason(BusyLoadingError("LOADING Redis is loading")) is None
    assert permanent_reason(redis.ResponseError("MASTERDOWN no master")) is None
    # a failover: the new master's replicas not linked yet, the old one demoted
    assert permanent_reason(redis.ResponseError("NOREPLICAS Not enough good replicas")) is None
    assert permanent_reason(redis.ReadOnlyError("You can't write")) is None
    # redis-py strips these codes: told by class
    assert permanent_reason(TryAgainError("Multiple keys request during rehashing")) is None
    assert permanent_reason(ClusterDownError("The cluster is down")) is None
    # a plain URL at a cluster node: permanent, and says what to do
    moved = permanent_reason(MovedError("9034 127.0.0.1:7502")) or ""
    assert "Redis Cluster node" in moved and "redis+cluster://" in moved
    assert permanent_reason(ConnectionRefusedError()) is None
    assert "credentials" in (permanent_reason(redis.AuthenticationError("WRONGPASS x")) or "")
    assert "ACL" in (permanent_reason(NoPermissionError("NOPERM no")) or "")
    assert permanent_reason(redis.ResponseError("ERR unknown command")) is not None


def test_worker_serves_every_queue_its_tasks_declare_and_says_so(
    real_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = Scheduler(real_redis, prefix="t")

    @app.task(queue="media")
    def thumb() -> str:
        return "thumb"

    @app.task
    def plain() -> str:
        return "plain"

    caplog.set_level("INFO", logger="scheduler.worker")
    with running(app) as worker:
        assert worker.queues == ["default", "media"]
        assert thumb.enqueue().result(timeout=30) == "thumb"
        assert plain.enqueue().result(timeout=30) == "plain"
    line = next(r.getMessage() for r in caplog.records if " started: " in r.getMessage())
    for part in (
        "redis=redis://",
        "prefix=t",
        "queues=default,media (every queue the app's tasks declare",
        "pool=thread",
        "concurrency=10",
        "version=",
        thumb.name,
    ):
        assert part in line, line


def test_start_up_line_never_shows_the_password(locked_server: DevServer) -> None:
    proc = spawn("worker", f"redis://:{PASSWORD}@127.0.0.1:{locked_server.port}/0")
    out = Output(proc)
    try:
        out.wait_for(" started: ")
    finally:
        code, text = out.finish()
    assert code == 0 and PASSWORD not in text, text


def test_result_survives_a_dropped_connection(redis_server: DevServer, real_app: Any) -> None:
    app: Scheduler = real_app

    @app.task
    def echo(x: int) -> int:
        return x

    job = echo.enqueue(7)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(job.result(timeout=60)), daemon=True)
    waiter.start()
    admin = redis.Redis.from_url(redis_server.url)
    wait_until(lambda: any(c.get("cmd") == "subscribe" for c in admin.client_list()))
    admin.client_kill_filter(_type="pubsub")
    wait_until(lambda: not any(c.get("cmd") == "subscribe" for c in admin.client_list()))
    worker = Worker(app)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    waiter.join(timeout=60)
    worker.stop()
    thread.join(timeout=15)
    admin.close()
    assert got == [7]
