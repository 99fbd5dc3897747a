"""Helpers for tests: run a worker for a block, wait for a condition, run a
``scheduler`` process and scrape its metrics, build raw enqueue items, count
a cluster channel's subscribers.

Plain functions imported by the tests (``from tests.helpers import running``);
fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler import Scheduler, Task, Worker
from scheduler.backend.scripts import EnqueueItem

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def running(app: Scheduler, *, join_timeout: float = 15.0, **kwargs: Any) -> Iterator[Worker]:
    """A :class:`Worker` running in a thread for the duration of the block;
    stopped (grace ``kwargs["grace"]`` or 5 s) and joined afterwards, within
    ``join_timeout`` seconds."""
    worker = Worker(app, **kwargs)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop(grace=kwargs.get("grace", 5.0))
        thread.join(timeout=join_timeout)
        assert not thread.is_alive()


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Wait for a condition that depends on time passing (lease expiry, ETAs).

    Fails the test if it is not met within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def start_worker(
    *args: str, role: str = "rescuer", env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``scheduler worker tests.apps.procapp:app ARGS`` in a subprocess
    (``WORKER_ROLE=role``; stderr merged into stdout)."""
    return subprocess.Popen(
        [sys.executable, "-m", "scheduler", "worker", "tests.apps.procapp:app", *args],
        cwd=ROOT,
        # faulthandler: a worker that will not stop is sent SIGABRT by stop()
        # and dumps every thread's stack into its output.
        env={**os.environ, "WORKER_ROLE": role, "PYTHONFAULTHANDLER": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM ``proc`` if it still runs; wait for it and return its output.

    A process still running 30 s later fails the test with its output and,
    for :func:`start_worker`'s processes, every thread's stack (SIGABRT,
    faulthandler)."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"process did not stop within 30 s of SIGTERM:\n{out.decode(errors='replace')}")
    return out.decode(errors="replace")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Output:
    """Collects a subprocess's merged output on a thread, so a test can wait
    for a line to appear (:meth:`wait_for`) while the process runs."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.append(raw.decode(errors="replace"))

    @property
    def text(self) -> str:
        """Everything read so far."""
        return "".join(self._lines)

    def wait_for(self, needle: str, timeout: float = 30.0, count: int = 1) -> None:
        """Wait until ``needle`` occurs ``count`` times in the output."""
        wait_until(lambda: self.text.count(needle) >= count, timeout=timeout)

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """SIGTERM the process if it runs; its exit code and whole output."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler: every thread's stack
            self.proc.wait(timeout=30)
            self._thread.join(timeout=10)
            pytest.fail(f"process did not stop within {timeout} s of SIGTERM:\n{self.text}")
        self._thread.join(timeout=10)
        return code, self.text


def enqueue_item(
    job_id: str, priority: float = 1.0, *, options: str = "3,60000,3600000,-1", **fields: object
) -> EnqueueItem:
    """A raw :class:`EnqueueItem` of task ``m:f`` with payload ``[[1],{}]``
    for calling the enqueue script directly; ``options`` is the encoded
    :class:`scheduler.backend.record.JobOptions` (max attempts, lease ms,
    result TTL ms, dead TTL ms), ``fields`` override the others."""
    values: dict[str, object] = {
        "job_id": job_id,
        "task": "m:f",
        "payload": "[[1],{}]",
        "priority": repr(priority),
        "inputs": "",
        "options": options,
        **fields,
    }
    return EnqueueItem(**values)  # type: ignore[arg-type]


def scrape(url: str) -> str:
    """The text of a Prometheus ``/metrics`` page (``url``), read over HTTP."""
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


#: The line a ``scheduler`` process prints when its metrics server listens.
METRICS_ANNOUNCED = re.compile(r"metrics on (http://127\.0\.0\.1:\d+/metrics)")


@contextmanager
def serving_metrics(*args: str, env: dict[str, str], cwd: Path = ROOT) -> Iterator[str]:
    """``python -m scheduler ARGS`` in a subprocess that serves metrics: the
    URL it announces (waited for, however long start-up takes under load);
    afterwards it gets SIGTERM and must exit 0. A process that never
    announces or never exits fails the test (it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = Output(proc)
    try:
        wait_until(
            lambda: METRICS_ANNOUNCED.search(out.text) or proc.poll() is not None, timeout=120
        )
        found = METRICS_ANNOUNCED.search(out.text)
        assert found, f"no metrics URL announced:\n{out.text}"
        yield found.group(1)
    except BaseException:
        proc.kill()
        out.finish()
        raise
    code, text = out.finish(timeout=60)
    assert code == 0, text


def blocker_and_tag(
    app: Scheduler, started: threading.Event, go: threading.Event, order: list[str]
) -> tuple[Task[[], None], Task[[str], None]]:
    """Two tasks of ``app`` for start-order tests: ``blocker`` sets
    ``started`` and holds its slot until ``go`` is set (at most 10 s);
    ``tag(name)`` appends ``name`` to ``order``."""

    @app.task
    def blocker() -> None:
        started.set()
        go.wait(10)

    @app.task
    def tag(name: str) -> None:
        order.append(name)

    return blocker, tag


def shard_subscribers(app: Scheduler, queue: str) -> int:
    """``PUBSUB SHARDNUMSUB`` of ``queue``'s finished channel, asked of the
    cluster master owning it (``app`` is on a Redis Cluster)."""
    client: Any = app.redis
    channel = app.queue_keys(queue).finished_channel
    node = client.get_node_from_key(channel)
    with redis.Redis(host=node.host, port=node.port) as direct:
        reply = direct.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(reply[1])


@contextmanager
def whoami_pool(
    size: int = 1, load: Callable[[str], Any] | None = None
) -> Iterator[tuple[Any, Callable[[], Any]]]:
    """A ``ProcessRunner`` of ``tests.apps.procapp:app`` with ``size``
    children (``load``: the children's app loader, default the worker's),
    shut down after the block. Yields ``(runner, run)``: ``run()`` submits
    one ``whoami`` job and returns its ``Outcome`` (bounded: 60 s)."""
    import queue

    from scheduler.backend.record import JobOptions
    from scheduler.worker.children import ProcessRunner
    from scheduler.worker.execution import LeasedJob, load_task_app
    from tests.apps.procapp import whoami

    done: queue.SimpleQueue[Any] = queue.SimpleQueue()
    runner = ProcessRunner(
        "tests.apps.procapp:app", size, lambda _j, o: done.put(o), load or load_task_app
    )
    options = JobOptions(1, 1000, 1000, -1)

    def run() -> Any:
        runner.submit(LeasedJob("default", "j", "1", whoami.name, "[[], {}]", 1, options, 1.0, 0))
        return done.get(timeout=60)

    try:
        yield runner, run
    finally:
        runner.shutdown()
