"""The storage-layer primitives the worker uses (blocking lease, wake markers,
worker registry writes), app loading for process-pool children, and the
worker's layering: nothing under ``scheduler/worker/`` imports the app or
sends a raw Redis command."""

from __future__ import annotations

import ast
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler import JobState, Scheduler
from scheduler.backend.caller import ScriptCaller
from scheduler.backend.waiting import FAKE_SLICE
from scheduler.backend.workers import WORKER_TTL
from scheduler.devserver import DevServer
from scheduler.loading import import_app
from scheduler.worker.execution import TaskApp, load_task_app
from tests.helpers import wait_until

WORKER_DIR = Path(__file__).resolve().parent.parent / "scheduler" / "worker"


def test_blocking_lease_takes_a_marker_and_leases_in_one_call(app: Scheduler) -> None:
    job = app.enqueue("m:f")  # pushes a marker
    lease = app.backend.blocking_lease(["default"], max_block=5.0)
    try:
        assert lease.lease_queue == "default"
        reply, woken = lease.wait_and_lease(4, "w1", "w1:r0", block=1.0)
        assert woken == "default"
        assert [job_id for job_id, _ in reply.jobs] == [job.id]
        # That first lease of the queue brought its earliest lease deadline
        # forward: it woke one idle worker to learn it (issue 9, item 5).
        reply, woken = lease.wait_and_lease(4, "w1", "w1:r1", block=1.0)
        assert woken == "default" and reply.jobs == [] and reply.wake_ms > 0
        started = time.monotonic()
        reply, woken = lease.wait_and_lease(4, "w1", "w1:r2", block=0.05)
        assert woken is None and reply.jobs == []  # timed out: nothing more to lease
        assert time.monotonic() - started < 2.0
    finally:
        lease.close()
    assert job.status is JobState.LEASED


def test_blocking_lease_reports_another_queues_marker(app: Scheduler) -> None:
    job = app.enqueue("m:f", queue="b")
    lease = app.backend.blocking_lease(["a", "b"], max_block=5.0)
    try:
        reply, woken = lease.wait_and_lease(1, "w1", "w1:r0", block=1.0)
    finally:
        lease.close()
    assert woken == "b" and reply.jobs == []  # the lease was for "a"
    assert job.status is JobState.READY


def test_blocking_lease_repeated_request_answers_from_the_cache(app: Scheduler) -> None:
    job = app.enqueue("m:f")
    lease = app.backend.blocking_lease(["default"], max_block=5.0)
    try:
        first, _ = lease.wait_and_lease(1, "w1", "w1:r0", block=0.05)
        again, _ = lease.wait_and_lease(1, "w1", "w1:r0", block=0.05)
    finally:
        lease.close()
    assert first.jobs == again.jobs and [j for j, _ in again.jobs] == [job.id]


def test_fakeredis_blocks_in_short_slices(app: Scheduler, client: redis.Redis) -> None:
    fake = type(client).__module__.startswith("fakeredis")
    assert app.backend.cuts_blocked_calls is not fake
    lease = app.backend.blocking_lease(["default"], max_block=30.0)
    lease.close()
    assert lease.max_block == (FAKE_SLICE if fake else 30.0)


def test_close_cuts_a_blocked_wait_and_the_lease_behind_it(real_app: Scheduler) -> None:
    lease = real_app.backend.blocking_lease(["default"], max_block=30.0)
    failed: list[BaseException] = []

    def wait() -> None:
        try:
            lease.wait_and_lease(1, "w1", "w1:r0", block=30.0)
        except Exception as exc:
            failed.append(exc)

    before = _blocked(real_app)  # other tests' workers may still be blocked too
    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    wait_until(lambda: _blocked(real_app) > before)
    lease.close()
    thread.join(timeout=5)
    assert not thread.is_alive() and failed
    # The server drops the cut wait once it reads the close -- which a
    # command sent on another connection meanwhile may overtake.
    wait_until(lambda: _blocked(real_app) <= before)
    job = real_app.enqueue("m:f")
    assert job.status is JobState.READY  # the lease behind the BLPOP never ran
    assert real_app.redis.llen(real_app.queue_keys("default").wake) == 1


class _ClosingPool(redis.ConnectionPool):
    """Hands out a connection and closes ``caller`` on the way: ``close()``
    lands between the caller's closed-check and its send, the window a
    worker's stop hits when its waiter is about to block again."""

    caller: ScriptCaller | None = None

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        conn = super().get_connection(*args, **kwargs)
        assert self.caller is not None
        self.caller.close()
        return conn


def test_a_call_sent_as_the_caller_closes_is_cut_not_left_blocked(
    redis_server: DevServer, real_redis: redis.Redis
) -> None:
    """A stopped worker left a BLPOP (and the lease behind it) blocked on a
    connection opened after its close: the next enqueue was leased to it."""
    pool = _ClosingPool.from_url(redis_server.url, client_name="cut-call")
    caller = ScriptCaller(redis.Redis(connection_pool=pool))
    pool.caller = caller
    with pytest.raises(redis.ConnectionError):
        caller.call_many([("BLPOP", "wake", "3"), ("SET", "behind", "1")], retry=False)
    # Cut: the server drops the connection once it reads the close (after
    # the commands sent before it); the marker is pushed only then, or it
    # could overtake the close and be taken by the BLPOP. Left open (the
    # bug), the connection stays listed: this wait fails.
    wait_until(lambda: not any(c.get("name") == "cut-call" for c in real_redis.client_list()))
    real_redis.lpush("wake", "marker")
    assert real_redis.llen("wake") == 1 and real_redis.get("behind") is None
    assert not any(c["cmd"] == "blpop" for c in real_redis.client_list())
    pool.disconnect()


def _blocked(app: Scheduler) -> int:
    """How many clients are blocked in BLPOP on the server."""
    return sum(c.get("cmd") == "blpop" for c in app.redis.client_list())


def test_push_wake(app: Scheduler) -> None:
    app.backend.push_wake("q1")
    assert app.redis.lrange(app.queue_keys("q1").wake, 0, -1) in ([b"1"], ["1"])


def test_worker_presence_writes_and_removes(app: Scheduler) -> None:
    backend = app.backend
    backend.publish_worker("h:1:ab", {"host": "h", "pid": "1"}, 1_700_000_000.5)
    key = app.keys.worker("h:1:ab")
    assert app.redis.hgetall(key) in (
        {b"host": b"h", b"pid": b"1"},
        {"host": "h", "pid": "1"},
    )
    assert 0 < app.redis.ttl(key) <= WORKER_TTL
    assert app.redis.zscore(app.keys.workers, "h:1:ab") == 1_700_000_000_500
    backend.remove_worker("h:1:ab")
    assert not app.redis.exists(key)
    assert app.redis.zscore(app.keys.workers, "h:1:ab") is None


def test_app_loaders() -> None:
    from tests.apps import procapp

    assert load_task_app("tests.apps.procapp:app") is procapp.app
    assert import_app("tests.apps.procapp:app") is procapp.app
    assert isinstance(procapp.app, TaskApp)
    with pytest.raises(ValueError, match="not a scheduler app"):
        load_task_app("tests.apps.procapp:hold")
    with pytest.raises(ValueError, match=r"not a scheduler\.Scheduler"):
        import_app("tests.apps.procapp:hold")
    with pytest.raises(ValueError, match=r"package\.module:app"):
        load_task_app("tests.apps.procapp")
    with pytest.raises(ImportError):
        import_app("nowhere.module:app")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("path", sorted(WORKER_DIR.glob("*.py")), ids=lambda p: p.name)
def test_worker_modules_stay_below_the_app(path: Path) -> None:
    above = ("scheduler.app", "scheduler.Scheduler", "scheduler.loading", "scheduler.cli")
    for name in _imports(path):
        assert not name.startswith(above), f"{path.name} imports {name}"
    raw = re.compile(
        r"\.(hset|hget|zadd|zrem|zrange|pipeline|publish|lpush|blpop|sadd|expire|delete"
        r"|execute_command|connection_pool)\b"
    )
    assert not raw.findall(path.read_text()), f"{path.name} sends raw Redis commands"
