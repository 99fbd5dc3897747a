"""``scheduler workers`` and ``scheduler events [--follow]``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scheduler import Scheduler
from scheduler.devserver import DevServer
from tests.helpers import running, wait_until
from tests.test_cli_common import (
    PREFIX,
    Run,
    as_json,
    capp,
    lease_all,
    one_line_error,
    run,
)

__all__ = ["capp", "run"]  # fixtures

ROOT = Path(__file__).resolve().parent.parent


def test_workers_lists_live_and_drops_dead(run: Run, capp: Scheduler) -> None:
    assert as_json(run("workers", "--json")) == {"workers": []}
    # a worker that died without deregistering: its details hash expired, the ZSET entry stayed
    capp.redis.zadd(capp.keys.workers, {"ghost:1:abc": 1.0})
    with running(capp, queues=["a", "b"], concurrency=3) as worker:
        wait_until(lambda: as_json(run("workers", "--json"))["workers"])
        (w,) = as_json(run("workers", "--json"))["workers"]
        assert w["id"] == worker.worker_id and w["queues"] == ["a", "b"]
        assert w["concurrency"] == 3 and w["pid"] == os.getpid() and w["pool"] == "thread"
        assert w["host"] and w["last_beat"] > 0 and w["started"] > 0 and w["inflight"] == 0
        assert capp.redis.zscore(capp.keys.workers, "ghost:1:abc") is None  # pruned on read
        assert as_json(run("workers", "-q", "b", "--json"))["workers"][0]["id"] == worker.worker_id
        assert as_json(run("workers", "-q", "zzz", "--json"))["workers"] == []
        human = run("workers")
        assert human.exit_code == 0 and worker.worker_id in human.stdout
        assert "1 live worker(s)" in human.stdout and "ago" in human.stdout


def test_events_recent(run: Run, capp: Scheduler) -> None:
    capp.enqueue("m:f", job_id="e1", queue="qa")
    capp.enqueue("m:f", job_id="e2", queue="qb")
    ((job_id, token),) = lease_all(capp, "qa", 1)
    capp.scripts.complete(capp.queue_keys("qa"), [(job_id, token, "1")])
    capp.job("e2").cancel()
    result = run("events", "--json")
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    # in order within a queue; across queues by server time (to the ms)
    assert [(e["event"], e["job"]) for e in events if e["queue"] == "qa"] == [
        ("enqueued", "e1"),
        ("leased", "e1"),
        ("succeeded", "e1"),
    ]
    assert [(e["event"], e["job"]) for e in events if e["queue"] == "qb"] == [
        ("enqueued", "e2"),
        ("cancelled", "e2"),
        ("audit", "e2"),  # the operator's cancel, with its actor
    ]
    assert [e["id"].split("-")[0] for e in events] == sorted(e["id"].split("-")[0] for e in events)
    leased = next(e for e in events if e["event"] == "leased")
    assert leased["detail"] == "1" and events[0]["detail"] is None  # attempt number
    assert set(events[0]) == {"id", "time", "queue", "event", "job", "detail"}
    only_b = run("events", "-q", "qb", "-n", "1")
    assert only_b.exit_code == 0
    assert only_b.stdout.count("\n") == 1 and "audit cancel by " in only_b.stdout
    one_line_error(run("events", "-q", "b{ad"), 2, "invalid queue name")


def _ctrl_c_ends_it() -> None:
    """In the child before exec: SIGINT back to its default. A process started
    in the background by a shell (``pytest ... &``, a CI script) inherits
    SIGINT *ignored*, and Python then keeps ignoring it -- as a user's
    backgrounded ``events --follow`` should -- so the test's Ctrl-C would be
    lost, not the command's fault."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_events_follow_tails_until_ctrl_c(redis_server: DevServer, capp: Scheduler) -> None:
    capp.enqueue("m:f", job_id="before")
    env = {**os.environ, "REDIS_URL": redis_server.url, "SCHEDULER_PREFIX": PREFIX}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "events", "--follow", "--json", "-n", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_ends_it,  # noqa: PLW1509 -- only resets one signal
    )
    # Only a hang guard: start-up and exit are awaited however long they take
    # on a loaded machine; a hang is killed and fails the exit-code check.
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert (first["event"], first["job"]) == ("enqueued", "before")
        # Following resumes after the last event shown, so nothing can fall in between.
        capp.enqueue("m:f", job_id="after")
        capp.enqueue("m:f", job_id="elsewhere", queue="newq")  # a queue that appears later
        seen = {json.loads(proc.stdout.readline())["job"] for _ in range(2)}
        assert seen == {"after", "elsewhere"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait() == 0  # not -9: Ctrl-C ended it, not the watchdog
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
