"""Operator actions: the real ``scheduler`` command (a subprocess) against a
real Redis server -- output, exit code, and the audit event each action
writes (issue 17). Also the API's ``actor=`` keyword, the dashboard's actor,
and the distinct events of a failure's retry and an operator's re-run."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from scheduler import Scheduler
from scheduler.admin import AUDIT, recent_events
from scheduler.admin.events import Event
from scheduler.devserver import DevServer
from scheduler.validation import default_actor, resolve_actor
from tests.test_cli_common import lease_all, make_dead

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "au"


@pytest.fixture
def app(real_redis: redis.Redis) -> Scheduler:
    return Scheduler(real_redis, prefix=PREFIX)


def cli(
    server: DevServer, *args: str, actor: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m scheduler --url URL --prefix au ARGS`` (a real process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCHEDULER_ACTOR", "REDIS_URL")}
    if actor is not None:
        env["SCHEDULER_ACTOR"] = actor
    return subprocess.run(
        [sys.executable, "-m", "scheduler", "--url", server.url, "--prefix", PREFIX, *args],
        check=False,
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def audits(app: Scheduler, queue: str = "default") -> list[Event]:
    return [e for e in recent_events(app.backend, [queue], 1000) if e.event == AUDIT]


def test_job_actions_write_audit_events_with_the_actor(
    redis_server: DevServer, app: Scheduler
) -> None:
    dead = make_dead(app, 1)[0]
    waiting = app.enqueue("m:f", job_id="w1").id
    delayed = app.enqueue("m:f", job_id="d1", delay=3600).id

    out = cli(redis_server, "job", "cancel", waiting, "--actor", "alice")
    assert out.returncode == 0, out.stderr
    assert f"cancelled: job {waiting}" in out.stdout
    (event,) = audits(app)
    assert (event.action, event.actor, event.count, event.job) == ("cancel", "alice", 1, waiting)

    out = cli(redis_server, "job", "retry", dead, actor="bob")  # actor from $SCHEDULER_ACTOR
    assert out.returncode == 0, out.stderr
    assert (audits(app)[-1].action, audits(app)[-1].actor) == ("retry", "bob")
    assert audits(app)[-1].job == dead

    out = cli(redis_server, "job", "reprioritize", dead, "-p", "7", "--actor", "carol")
    assert out.returncode == 0, out.stderr
    last = audits(app)[-1]
    assert (last.action, last.actor, last.detail) == ("reprioritize", "carol", "7")

    out = cli(redis_server, "job", "run-now", delayed)  # default actor: user@host
    assert out.returncode == 0, out.stderr
    last = audits(app)[-1]
    assert last.action == "run_now" and re.fullmatch(
        r".+@" + re.escape(socket.gethostname()), last.actor
    )

    # Nothing to do: exit 1, and no audit event.
    out = cli(redis_server, "job", "run-now", delayed, "--actor", "dave")
    assert out.returncode == 1 and "only delayed jobs" in out.stderr
    assert len(audits(app)) == 4

    as_json = cli(redis_server, "events", "--action", "cancel", "--action", "retry", "--json")
    assert as_json.returncode == 0, as_json.stderr
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["action"], r["actor"], r["count"]) for r in rows] == [
        ("cancel", "alice", 1),
        ("retry", "bob", 1),
    ]
    text = cli(redis_server, "events", "--audit", "--utc").stdout
    assert re.search(r" UTC  default  audit reprioritize by carol: 1 job\(s\)  \S+  7\n", text)


def test_queue_actions_exit_codes_and_audit_events(redis_server: DevServer, app: Scheduler) -> None:
    make_dead(app, 3)
    app.enqueue("m:f", job_id="keep")

    out = cli(redis_server, "queue", "pause", "default", "--actor", "ops")
    assert (out.returncode, out.stdout) == (0, "queue default paused\n"), out.stderr
    again = cli(redis_server, "queue", "pause", "default", "--actor", "ops")
    assert again.returncode == 1 and "already paused" in again.stderr
    out = cli(redis_server, "queue", "resume", "default", "--actor", "ops")
    assert out.returncode == 0, out.stderr
    again = cli(redis_server, "queue", "resume", "default", "--json")
    assert again.returncode == 1 and json.loads(again.stdout)["changed"] is False

    out = cli(redis_server, "queue", "aging", "default", "0.5", "--actor", "ops")
    assert out.returncode == 0, out.stderr
    assert cli(redis_server, "queue", "aging", "default", "0.5").returncode == 1

    out = cli(redis_server, "queue", "purge", "default", "-s", "dead", "--yes", "--actor", "ops")
    assert (out.returncode, out.stdout) == (0, "deleted 3 dead job(s) from queue default\n")
    empty = cli(redis_server, "queue", "purge", "default", "-s", "dead", "--yes")
    assert empty.returncode == 1 and "no dead jobs" in empty.stderr

    nothing = cli(redis_server, "retry", "-q", "default", "--all")
    assert nothing.returncode == 1 and "requeued 0 of 0" in nothing.stderr

    got = [(e.action, e.actor, e.count, e.detail) for e in audits(app)]
    assert got == [
        ("pause", "ops", 0, ""),
        ("resume", "ops", 0, ""),
        ("aging", "ops", 0, "0.5"),
        ("purge", "ops", 3, "dead"),
    ]
    only = cli(redis_server, "events", "--action", "purge")
    assert only.returncode == 0 and "audit purge by ops: 3 job(s)  dead" in only.stdout
    assert only.stdout.count("\n") == 1


def test_bulk_retry_writes_one_audit_event_naming_the_jobs(
    redis_server: DevServer, app: Scheduler
) -> None:
    ids = make_dead(app, 3)
    out = cli(redis_server, "retry", "-q", "default", "--all", "--actor", "eve")
    assert out.returncode == 0 and "requeued 3 of 3" in out.stdout, out.stderr
    (event,) = audits(app)
    assert (event.action, event.actor, event.count) == ("retry", "eve", 3)
    assert sorted(event.job.split(",")) == sorted(ids)
    # Each job's own history says "rerun", not "retried".
    names = {e.event for e in recent_events(app.backend, ["default"], 100) if e.job == ids[0]}
    assert "rerun" in names


def test_a_queue_never_used_is_refused_unless_created(
    redis_server: DevServer, app: Scheduler
) -> None:
    app.enqueue("m:f", queue="emails")
    typo = cli(redis_server, "queue", "pause", "emials")
    assert typo.returncode == 1 and "never used" in typo.stderr and "--create" in typo.stderr
    assert app.queue_names() == ["emails"]  # no phantom queue
    for args in (
        ("queue", "resume", "emials"),
        ("queue", "purge", "emials", "-s", "dead", "--yes"),
        ("queue", "aging", "emials", "1"),
        ("retry", "-q", "emials", "--all"),
    ):
        refused = cli(redis_server, *args)
        assert refused.returncode == 1 and "never used" in refused.stderr, args
    assert app.queue_names() == ["emails"]
    created = cli(redis_server, "queue", "pause", "emials", "--create")
    assert created.returncode == 0, created.stderr
    assert app.queue_names() == ["emails", "emials"]
    assert cli(redis_server, "queue", "pause", "b{ad").returncode == 2


def test_schedule_changes_write_audit_events(redis_server: DevServer, app: Scheduler) -> None:
    add = ("schedules", "add", "m:f", "--every", "1h", "--id", "hourly")
    out = cli(redis_server, *add, "--actor", "sam")
    assert out.returncode == 0, out.stderr
    assert cli(redis_server, "schedules", "pause", "hourly", "--actor", "sam").returncode == 0
    assert cli(redis_server, "schedules", "pause", "hourly").returncode == 1
    assert cli(redis_server, "schedules", "resume", "hourly", "--actor", "sam").returncode == 0
    assert cli(redis_server, *add, "--priority", "3", "--actor", "sam").returncode == 0
    out = cli(redis_server, "schedules", "remove", "hourly", "--yes", "--actor", "sam")
    assert out.returncode == 0, out.stderr
    got = [(e.action, e.actor, e.job) for e in audits(app)]
    assert got == [
        ("schedule_create", "sam", "hourly"),
        ("schedule_pause", "sam", "hourly"),
        ("schedule_resume", "sam", "hourly"),
        ("schedule_update", "sam", "hourly"),
        ("schedule_remove", "sam", "hourly"),
    ]


def test_failure_retry_and_operator_rerun_are_distinct_events(app: Scheduler) -> None:
    job = app.enqueue("m:f", max_attempts=3)
    ((job_id, token),) = lease_all(app, "default", 1)
    app.scripts.fail(app.queue_keys("default"), [(job_id, token, '{"error": "x"}', 0)])
    assert job.retry(actor="ops") is True
    names = [e.event for e in recent_events(app.backend, ["default"], 100) if e.job == job.id]
    assert names == ["enqueued", "leased", "retried", "rerun", "audit"]


def test_api_methods_take_an_actor(app: Scheduler, monkeypatch: pytest.MonkeyPatch) -> None:
    app.enqueue("m:f")
    assert app.pause("default", actor="api-user") is True
    assert app.pause("default", actor="api-user") is False
    monkeypatch.setenv("SCHEDULER_ACTOR", "from-env")
    assert app.resume("default") is True
    assert app.set_aging("default", 2.0) is True
    assert app.purge("default", "ready", actor="cleaner") == 1
    got = [(e.action, e.actor, e.count) for e in audits(app)]
    assert got == [
        ("pause", "api-user", 0),
        ("resume", "from-env", 0),
        ("aging", "from-env", 0),
        ("purge", "cleaner", 1),
    ]
    with pytest.raises(ValueError, match="actor"):
        app.pause("default", actor="bad\nname")
    assert len(audits(app)) == 4  # nothing written


def test_default_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDULER_ACTOR", raising=False)
    assert default_actor().endswith("@" + socket.gethostname())
    monkeypatch.setenv("SCHEDULER_ACTOR", "  ")
    assert "@" in default_actor()  # blank: ignored
    monkeypatch.setenv("SCHEDULER_ACTOR", "ci-bot")
    assert resolve_actor(None) == "ci-bot" and resolve_actor("me") == "me"
    for bad in ("", "x" * 201, "tab\there", 5):
        with pytest.raises(ValueError):
            resolve_actor(bad)


def test_audit_events_are_bounded_with_the_stream(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix=PREFIX, events_maxlen=5)
    app.enqueue("m:f")
    for _ in range(100):
        app.pause("default", actor="a")
        app.resume("default", actor="a")
    assert real_redis.xlen(app.queue_keys("default").events) < 5 + 100  # MAXLEN ~ 5


def test_events_off_writes_no_audit(real_redis: redis.Redis) -> None:
    app = Scheduler(real_redis, prefix=PREFIX, events_maxlen=0)
    app.enqueue("m:f")
    assert app.pause("default", actor="a") is True
    assert app.purge("default", "ready", actor="a") == 1
    assert real_redis.exists(app.queue_keys("default").events) == 0


def test_dashboard_actions_write_the_web_actor(real_redis: redis.Redis) -> None:
    from starlette.testclient import TestClient

    from scheduler.web import create_app

    app = Scheduler(real_redis, prefix=PREFIX)
    app.enqueue("m:f")
    client = TestClient(create_app(app), follow_redirects=False)
    page = client.get("/queues/default")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the queue page"
    reply = client.post("/queues/default/pause", data={"csrf": token.group(1), "confirmed": "yes"})
    assert reply.status_code == 303, reply.text
    (event,) = audits(app)
    assert event.action == "pause" and event.actor.startswith("web@")


def test_limit_changes_write_audit_events(redis_server: DevServer, app: Scheduler) -> None:
    """`queue limit` names its actor in an audit event like every other
    change (it wrote none); a call that changes nothing, or is refused,
    writes none."""
    app.enqueue("m:f")  # the queue is in use
    out = cli(redis_server, "queue", "limit", "default", "--concurrency", "3", "--actor", "alice")
    assert out.returncode == 0, out.stderr
    (event,) = audits(app)
    assert (event.action, event.actor, event.count, event.detail) == ("limit", "alice", 0, ";3;")

    app.set_limits("default", task="m:f", rate="10/s", actor="bob")
    last = audits(app)[-1]
    assert (last.action, last.actor, last.detail) == ("limit", "bob", "m:f;;10/1000")

    # The same value again changes nothing; a bad value is refused: no event.
    assert cli(redis_server, "queue", "limit", "default", "--concurrency", "3").returncode == 0
    assert cli(redis_server, "queue", "limit", "default", "--rate", "lots").returncode == 2
    assert len(audits(app)) == 2

    out = cli(redis_server, "queue", "limit", "default", "--concurrency", "none", "--actor", "c")
    assert out.returncode == 0, out.stderr
    assert (audits(app)[-1].actor, audits(app)[-1].detail) == ("c", ";;")
    rows = cli(redis_server, "events", "--action", "limit", "--json").stdout.splitlines()
    assert [json.loads(r)["actor"] for r in rows] == ["alice", "bob", "c"]
