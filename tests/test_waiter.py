"""The waiter starting the first job of its lease itself (issue 16, latency):
only when the dispatcher allows it, the best job, within the concurrency."""

from __future__ import annotations

import queue
import threading

from scheduler import JobState, Scheduler
from scheduler.errors import JobFailedError
from scheduler.worker.execution import LeasedJob
from scheduler.worker.messages import Leased, Message
from scheduler.worker.waiter import Waiter
from tests.helpers import running, wait_until


def _waiter(app: Scheduler) -> tuple[Waiter, queue.SimpleQueue[Message], list[LeasedJob]]:
    inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
    ran: list[LeasedJob] = []
    lease = app.backend.blocking_lease([app.default_queue], 5.0)
    return Waiter(lease, "w-test", inbox, ran.append), inbox, ran


def _leased(inbox: queue.SimpleQueue[Message]) -> Leased:
    message = inbox.get(timeout=10)
    assert isinstance(message, Leased)
    return message


def test_a_permitted_waiter_runs_the_best_leased_job_itself(real_app: Scheduler) -> None:
    @real_app.task
    def f() -> None:
        pass

    low, high = f.options(priority=1.0).enqueue(), f.options(priority=5.0).enqueue()
    waiter, inbox, ran = _waiter(real_app)
    try:
        assert waiter.request(2, 5.0, direct=True)
        message = _leased(inbox)
        assert [job_id for job_id, _ in message.reply.jobs] == [high.id, low.id]
        assert message.started is not None and message.started.job.id == high.id
        wait_until(lambda: len(ran) == 1)
        assert ran[0] is message.started.job  # the very job the message names
        waiter.revoke()
        assert waiter.took() is True  # the dispatcher learns a job was started
        assert waiter.took() is False
    finally:
        waiter.close()
    assert high.status is JobState.LEASED and low.status is JobState.LEASED


def test_a_revoked_permission_hands_the_jobs_over_unstarted(real_app: Scheduler) -> None:
    @real_app.task
    def f() -> None:
        pass

    waiter, inbox, ran = _waiter(real_app)
    try:
        assert waiter.request(1, 5.0, direct=True)
        waiter.revoke()
        job = f.enqueue()
        message = _leased(inbox)
        assert [job_id for job_id, _ in message.reply.jobs] == [job.id]
        assert message.started is None
        # Asked again without permission: the same.
        second = f.enqueue()
        assert waiter.request(1, 5.0, direct=False)
        message = _leased(inbox)
        assert [job_id for job_id, _ in message.reply.jobs] == [second.id]
        assert message.started is None and ran == [] and waiter.took() is False
    finally:
        waiter.close()


def test_an_idle_worker_runs_a_new_job_on_the_thread_that_leased_it(real_app: Scheduler) -> None:
    @real_app.task
    def where() -> str:
        return threading.current_thread().name

    with running(real_app, concurrency=2):
        # The first job may come before the worker's first wait (then it
        # leases the job itself); each later one is enqueued after the round
        # that reported the one before, so the worker is waiting.
        where.enqueue().result(timeout=10)
        names = [where.enqueue().result(timeout=10) for _ in range(3)]
    assert all(name.startswith("scheduler-waiter-") for name in names), names


def test_jobs_started_by_the_waiter_keep_the_concurrency(real_app: Scheduler) -> None:
    lock = threading.Lock()
    state = {"running": 0, "most": 0}
    go = threading.Event()

    @real_app.task
    def hold() -> None:
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
        go.wait(0.05)
        with lock:
            state["running"] -= 1

    with running(real_app, concurrency=2, prefetch=0):
        jobs = []
        for _ in range(12):
            jobs.append(hold.enqueue())
            wait_until(lambda: jobs[-1].status is not JobState.READY or state["running"] == 2)
        for job in jobs:
            job.result(timeout=20)
    assert state["most"] == 2


def test_a_job_run_by_the_waiter_past_its_timeout_frees_its_slot(real_app: Scheduler) -> None:
    release = threading.Event()

    @real_app.task(timeout=0.3, max_attempts=1)
    def stuck() -> None:
        release.wait(30)

    @real_app.task
    def quick() -> int:
        return 7

    try:
        with running(real_app, concurrency=1, grace=0.1):
            job = stuck.enqueue()
            try:
                job.result(timeout=20)
            except JobFailedError as exc:
                assert "JobTimeoutError" in str(exc)
            else:
                raise AssertionError("the stuck job succeeded")
            assert job.status is JobState.DEAD
            # The waiter's thread is still in the stuck task; another one waits.
            assert quick.enqueue().result(timeout=10) == 7
    finally:
        release.set()


def test_no_new_permission_until_the_dispatcher_took_the_started_job(real_app: Scheduler) -> None:
    @real_app.task
    def f() -> None:
        pass

    waiter, inbox, ran = _waiter(real_app)
    try:
        first = f.enqueue()
        assert waiter.request(1, 5.0, direct=True)
        started = _leased(inbox).started
        assert started is not None and started.job.id == first.id
        # Its start is not acknowledged: the dispatcher's counts lack it.
        second = f.enqueue()
        assert waiter.request(1, 5.0, direct=True)
        message = _leased(inbox)
        assert message.reply.jobs[0][0] == second.id and message.started is None
        assert waiter.took() is True and waiter.took() is False
        third = f.enqueue()
        assert waiter.request(1, 5.0, direct=True)
        started = _leased(inbox).started
        assert started is not None and started.job.id == third.id
        wait_until(lambda: len(ran) == 2)
    finally:
        waiter.close()
