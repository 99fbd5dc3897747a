"""Worker processes across a Redis restart and a graceful stop of a thread
pool (issue 9, items 3 and 6, with real processes): the worker rides out the
server going away and coming back empty (connections dropped, scripts no
longer loaded) and keeps serving; SIGTERM of an idle or busy thread-pool
worker exits 0 without a traceback."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from scheduler import JobState, Scheduler
from scheduler.devserver import DevServer
from tests.helpers import Output, free_port, start_worker, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def own_server() -> Iterator[DevServer]:
    """A server of this test's own on a fixed port (it is restarted)."""
    server = DevServer(port=free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def test_worker_keeps_serving_across_a_redis_restart(own_server: DevServer) -> None:
    from tests.apps.procapp import whoami

    env = {"SCHEDULER_TEST_URL": own_server.url, "SCHEDULER_TEST_PREFIX": "rs"}
    worker = Output(start_worker("--concurrency", "2", env=env))
    app = Scheduler.from_url(own_server.url, prefix="rs")
    try:
        worker.wait_for(" started: ")
        assert app.enqueue(whoami.name).result(timeout=30) == worker.proc.pid
        own_server.stop()  # the worker's connections drop; the data is gone
        own_server.start()
        # A new job on the empty server: the worker reconnects, loads its
        # scripts again and runs it.
        assert app.enqueue(whoami.name).result(timeout=60) == worker.proc.pid
        assert worker.proc.poll() is None
        code, out = worker.finish()
    finally:
        app.close()
        if worker.proc.poll() is None:
            worker.proc.kill()
    assert code == 0, out
    assert "Traceback" not in out, out


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_thread_pool_sigterm_exits_0_without_traceback(papp: Scheduler, busy: bool) -> None:
    from tests.apps.procapp import hold

    worker = Output(start_worker("-c", "2", "--grace", "0.3", role="victim"))
    worker.wait_for(" started: ")
    job = None
    if busy:
        job = hold.enqueue("long")  # blocks for a minute in a victim
        wait_until(lambda: job.info().started_at is not None, timeout=30)
    worker.proc.send_signal(signal.SIGTERM)
    code, out = worker.finish()
    assert code == 0, out
    assert "Traceback" not in out and "Error" not in out, out
    if job is not None:
        info = job.info()
        # Released after the grace period: a graceful stop gives the attempt back.
        assert info.state is JobState.READY and info.attempts == 0, out
