"""Middleware, lifecycle hooks, several observers and the worker's event loop,
on a real Redis server."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from scheduler import JobContext, JobFailedError, Scheduler, Worker, current_job
from scheduler.backend.record import JobOptions
from scheduler.context import NoJobContextError
from scheduler.errors import ValidationError
from scheduler.metrics import WorkerMetrics, start_metrics_server
from scheduler.worker.execution import LeasedJob, job_context_of, run_task
from tests.helpers import running, start_worker, stop, wait_until

tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="-")


def test_middleware_runs_in_order_around_the_task(real_app: Scheduler) -> None:
    calls: list[str] = []

    @real_app.hooks.middleware
    def outer(ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        calls.append(f"outer>{ctx.id == current_job().id}")
        token = tenant.set(str(ctx.meta.get("tenant", "?")))
        try:
            return {"wrapped": call_next()}
        finally:
            tenant.reset(token)
            calls.append("outer<")

    @real_app.hooks.middleware
    def inner(ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        calls.append("inner>")
        result = call_next()
        calls.append("inner<")
        return result

    @real_app.task
    def who() -> str:
        calls.append("task")
        return tenant.get()

    job = who.options(meta={"tenant": "acme"}).enqueue()
    with running(real_app):
        assert job.result(timeout=10) == {"wrapped": "acme"}
    assert calls == ["outer>True", "inner>", "task", "inner<", "outer<"]


def test_a_middleware_may_fail_the_job(real_app: Scheduler) -> None:
    @real_app.hooks.middleware
    def gate(ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        if ctx.meta.get("blocked"):
            raise PermissionError("tenant is blocked")
        return call_next()

    ran: list[int] = []

    @real_app.task(max_attempts=1)
    def work() -> int:
        ran.append(1)
        return 1

    blocked = work.options(meta={"blocked": True}).enqueue()
    fine = work.enqueue()
    with running(real_app):
        with pytest.raises(JobFailedError, match="tenant is blocked"):
            blocked.result(timeout=10)
        assert fine.result(timeout=10) == 1
    assert ran == [1]


def test_async_middleware_wraps_async_tasks(real_app: Scheduler) -> None:
    seen: list[str] = []

    @real_app.hooks.middleware
    async def around(ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        seen.append(f"async {ctx.task}")
        return (await call_next()) * 10

    @real_app.hooks.middleware
    def sync_only(ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        seen.append(f"sync {ctx.task}")
        return call_next()

    @real_app.task(name="a")
    async def a() -> int:
        await asyncio.sleep(0)
        return 1

    @real_app.task(name="s")
    def s() -> int:
        return 2

    ja, js = a.enqueue(), s.enqueue()
    with running(real_app, concurrency=1):
        assert ja.result(timeout=10) == 10
        assert js.result(timeout=10) == 2
    assert sorted(seen) == ["async a", "sync s"]


def test_a_middleware_must_be_callable(real_app: Scheduler) -> None:
    with pytest.raises(ValidationError):
        real_app.hooks.middleware(42)


def _url(client: redis.Redis) -> str:
    return "redis://{host}:{port}/0".format(**client.connection_pool.connection_kwargs)


def test_an_app_wide_async_client_keeps_working_across_jobs(
    real_app: Scheduler, real_redis: redis.Redis
) -> None:
    """With ``asyncio.run()`` per job the second job failed: "Event loop is closed"."""
    shared: list[redis.asyncio.Redis] = []

    @real_app.task(max_attempts=1)
    async def bump() -> int:
        if not shared:
            shared.append(redis.asyncio.Redis.from_url(_url(real_redis)))
        return int(await shared[0].incr("count"))

    jobs = [bump.enqueue() for _ in range(10)]
    with running(real_app, concurrency=3):
        assert sorted(j.result(timeout=20) for j in jobs) == list(range(1, 11))


def test_async_tasks_share_one_event_loop_and_a_client_made_at_startup(
    real_app: Scheduler, real_redis: redis.Redis
) -> None:
    """One app-wide ``redis.asyncio`` client, made lazily by the first job or
    by an async start-up hook, keeps working for every later job (with
    ``asyncio.run()`` per job the second job failed: "Event loop is closed")."""
    url = "redis://{host}:{port}/0".format(**real_redis.connection_pool.connection_kwargs)
    clients: dict[str, redis.asyncio.Redis] = {}
    loops: set[int] = set()

    def client() -> redis.asyncio.Redis:
        if "lazy" not in clients:
            clients["lazy"] = redis.asyncio.Redis.from_url(url)
        return clients["lazy"]

    @real_app.hooks.on_startup
    async def connect() -> None:
        clients["startup"] = redis.asyncio.Redis.from_url(url)

    @real_app.hooks.on_shutdown
    async def disconnect() -> None:
        for c in clients.values():
            await c.aclose()
        clients.clear()

    @real_app.task
    async def bump(n: int) -> int:
        loops.add(id(asyncio.get_running_loop()))
        await client().incr("lazy-count")
        return int(await clients["startup"].incr("startup-count"))

    jobs = [bump.enqueue(i) for i in range(20)]
    with running(real_app, concurrency=4):
        results = sorted(j.result(timeout=20) for j in jobs)
    assert results == list(range(1, 21))
    assert real_redis.get("lazy-count") == b"20" and len(loops) == 1
    assert clients == {}  # the shutdown hook ran


def test_async_tasks_run_concurrently_up_to_the_concurrency(real_app: Scheduler) -> None:
    state = {"running": 0, "most": 0}
    release = threading.Event()

    @real_app.task
    async def wait_for_release() -> int:
        state["running"] += 1
        state["most"] = max(state["most"], state["running"])
        while not release.is_set():
            await asyncio.sleep(0.01)
        state["running"] -= 1
        return state["most"]

    @real_app.task
    def sync_meanwhile() -> str:
        return threading.current_thread().name

    jobs = [wait_for_release.enqueue() for _ in range(6)]
    with running(real_app, concurrency=3):
        wait_until(lambda: state["running"] == 3)
        release.set()
        assert max(j.result(timeout=10) for j in jobs) == 3
        # a sync task of an async-capable worker still runs in a thread of
        # its own (a pool thread, or the waiter's that leased it), not on the loop
        name = sync_meanwhile.enqueue().result(timeout=10)
        assert name.startswith(("scheduler-job-", "scheduler-waiter-")), name


def test_an_async_task_past_its_timeout_is_cancelled(real_app: Scheduler) -> None:
    cancelled = threading.Event()

    @real_app.task(timeout=0.3, max_attempts=1)
    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = stuck.enqueue()
    with running(real_app):
        with pytest.raises(JobFailedError, match="Timeout"):
            job.result(timeout=10)
        assert cancelled.wait(10)


def test_a_failing_startup_hook_stops_the_worker(real_app: Scheduler) -> None:
    @real_app.hooks.on_startup
    def broken() -> None:
        raise RuntimeError("no database")

    with pytest.raises(RuntimeError, match="no database"):
        Worker(real_app).run()


# -- observers ------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.finished: list[tuple[str, str]] = []

    def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None:
        self.finished.append((job.id, outcome))


class Broken:
    def on_leased(self, job: LeasedJob) -> None:
        raise RuntimeError("observer bug")

    def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None:
        raise RuntimeError("observer bug")


def test_several_observers_with_failures_isolated(real_app: Scheduler) -> None:
    @real_app.task
    def ok() -> int:
        return 1

    first, second = Recorder(), Recorder()
    job = ok.enqueue()
    with running(real_app, observers=[first, Broken(), second]) as worker:
        job.result(timeout=10)
        wait_until(lambda: second.finished)
        assert len(worker.observers) == 3
    assert first.finished == second.finished == [(job.id, "succeeded")]


def test_metrics_do_not_replace_a_users_observer(real_app: Scheduler) -> None:
    mine = Recorder()
    worker = Worker(real_app, observer=mine)
    server = start_metrics_server(worker, 0, addr="127.0.0.1", interval=60)
    try:
        assert worker.observers[0] is mine
        assert any(isinstance(o, WorkerMetrics) for o in worker.observers)
    finally:
        server.close()


# -- process pool -----------------------------------------------------------------


def test_context_hooks_and_event_loop_in_process_pool_children(
    papp: Scheduler, real_redis: redis.Redis, tmp_path: Path
) -> None:
    from tests.apps.procapp import async_count, context

    env = {"SCHEDULER_TEST_SHUTDOWN_DIR": str(tmp_path)}
    worker = start_worker("--pool", "process", "-c", "2", env=env)
    try:
        job = context.options(meta={"tenant": "acme"}).enqueue()
        got = job.result(timeout=60)
        counts = [async_count.enqueue() for _ in range(10)]
        results = [j.result(timeout=60) for j in counts]
        progress = papp.backend.progress("default", job.id)  # swept only by later writes
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    finally:
        out = stop(worker)
    assert code == 0, out
    assert got["id"] == job.id and got["meta"] == {"tenant": "acme"} and got["attempt"] == 1
    assert got["started"] and got["pid"] != worker.pid  # ran in a child, after its hook
    assert sorted(count for _, count in results) == list(range(1, 11))
    assert progress is not None and progress.message == "half way"
    children = {pid for pid, _ in results} | {got["pid"]}
    assert worker.pid not in children
    wait_until(lambda: {int(p.name) for p in tmp_path.iterdir()} >= children, timeout=30)


def test_a_middleware_added_while_the_worker_runs_wraps_the_next_jobs(
    real_app: Scheduler,
) -> None:
    @real_app.task
    def plain() -> str:
        return "task"

    with running(real_app, concurrency=1):
        assert plain.enqueue().result(timeout=10) == "task"  # no middleware yet

        @real_app.hooks.middleware
        def late(ctx: JobContext, call_next: Callable[[], Any]) -> Any:
            return f"late({call_next()})"

        assert plain.enqueue().result(timeout=10) == "late(task)"


def test_the_job_context_is_reset_after_a_task_without_middleware_fails(
    real_app: Scheduler,
) -> None:
    seen: list[str] = []

    @real_app.task(max_attempts=1)
    def boom() -> None:
        seen.append(current_job().id)
        raise RuntimeError("boom")

    options = JobOptions(1, 60_000, 3_600_000, 604_800_000)
    job = LeasedJob("default", "j1", "tok", boom.name, "[[], {}]", 1, options, 0.0, 0)
    outcome = run_task(real_app, job.task, job.payload, 1, job_context_of(job))
    assert not outcome.ok and "boom" in outcome.error and seen == ["j1"]
    with pytest.raises(NoJobContextError):
        current_job()  # this thread ran the task: nothing of it is left here
