"""A worker's start-up and shutdown: its pool, its lifecycle hooks, and
registering with Redis.

Lifecycle hooks (``app.hooks.on_startup`` / ``on_shutdown``,
:mod:`scheduler.middleware`) run in every process that runs tasks: the
worker itself with the thread pool (start-up hooks before it registers and
leases anything, shutdown hooks after its pool stopped), and each
process-pool child (:func:`~.child.child_main`) with the process pool.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from scheduler.backend import Backend
from scheduler.backend.startup import retry_start, server_label
from scheduler.worker.capacity import Capacity
from scheduler.worker.children import ProcessRunner
from scheduler.worker.execution import AppLoader, TaskApp, TaskRuntime
from scheduler.worker.heartbeat import Heartbeater
from scheduler.worker.observer import log_started
from scheduler.worker.pool import Report, ThreadRunner

__all__ = [
    "Runner",
    "RunnerFacts",
    "WorkerFacts",
    "announce_started",
    "default_worker_id",
    "details",
    "make_runner",
    "register",
    "start_runtime",
    "stop_runtime",
]

log = logging.getLogger("scheduler.worker")

Runner = ThreadRunner | ProcessRunner


class WorkerFacts(Protocol):
    """What the start-up line and the worker's registry entry show of a
    :class:`~.worker.Worker`."""

    @property
    def app(self) -> TaskApp: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def queues(self) -> list[str]: ...
    @property
    def queues_from_tasks(self) -> bool: ...
    @property
    def pool_kind(self) -> str: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def prefetch(self) -> int: ...
    @property
    def capacity(self) -> Capacity | None: ...


def details(worker: WorkerFacts) -> dict[str, str]:
    """The worker's details for its registry entry (``scheduler workers``)."""
    return {
        "queues": ",".join(worker.queues),
        "concurrency": str(worker.concurrency),
        "capacity": "" if worker.capacity is None else repr(worker.capacity.total),
        "pool": worker.pool_kind,
        "started": repr(time.time()),
    }


def announce_started(worker: WorkerFacts) -> None:
    """Log the worker's start-up line (:func:`~.observer.log_started`)."""
    log_started(
        worker_id=worker.worker_id,
        server=server_label(worker.backend.client),
        prefix=worker.backend.prefix,
        queues=worker.queues,
        queues_from_tasks=worker.queues_from_tasks,
        tasks=sorted(worker.app.tasks),
        pool=worker.pool_kind,
        concurrency=worker.concurrency,
        prefetch=worker.prefetch,
    )


class RunnerFacts(Protocol):
    """What :func:`make_runner` needs of a :class:`~.worker.Worker`."""

    @property
    def app(self) -> TaskApp: ...
    @property
    def runtime(self) -> TaskRuntime: ...
    @property
    def pool_kind(self) -> str: ...
    @property
    def concurrency(self) -> int: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def app_path(self) -> str | None: ...
    @property
    def app_loader(self) -> AppLoader: ...


def make_runner(
    worker: RunnerFacts, report: Report, on_ready: Callable[[], None] | None = None
) -> Runner:
    """The worker's pool: ``pool_kind`` ``"thread"`` (jobs run in its
    ``runtime``) or ``"process"`` (children import the app from ``app_path``
    with ``app_loader``; ``on_ready`` is called once they all started,
    :class:`~.children.ProcessRunner`); ``concurrency`` slots."""
    if worker.pool_kind == "process":
        assert worker.app_path is not None
        return ProcessRunner(
            worker.app_path,
            worker.concurrency,
            report,
            worker.app_loader,
            worker.worker_id,
            on_ready,
        )
    return ThreadRunner(worker.app, worker.concurrency, report, worker.runtime, worker.worker_id)


def start_runtime(kind: str, runtime: TaskRuntime) -> None:
    """Run the start-up hooks in this process if its pool runs tasks here.

    Raises:
        Whatever a hook raised (the worker does not start).
    """
    if kind == "thread":
        runtime.startup()


def stop_runtime(kind: str, runtime: TaskRuntime) -> None:
    """Run the shutdown hooks (thread pool) and close the event loop."""
    if kind == "thread":
        runtime.shutdown()


def register(
    backend: Backend,
    queues: Sequence[str],
    heart: Heartbeater,
    worker_id: str,
    wait: Callable[[float], bool],
    declared: Collection[str] = (),
) -> bool:
    """Register the queues and announce the worker, waiting for Redis
    (:func:`~scheduler.backend.startup.retry_start`). Returns False if
    stopped (``wait`` returned True) before Redis answered.

    A queue that was never used (not yet registered) and that none of
    ``declared`` (the queues the app's tasks name) is logged as a WARNING --
    most often a typo in ``--queues``; it is served all the same.

    Raises:
        StartupError: Redis refused the credentials or the ACL denies them.
    """

    def step() -> bool:
        known = set(backend.queue_names())
        for q in queues:
            if q not in known and q not in declared:
                log.warning(
                    "queue %r was never used and no task of the app names it "
                    "(a typo?); serving it anyway",
                    q,
                )
            backend.register_queue(q)
        heart.announce(0)
        return True

    started = retry_start(
        step,
        what=f"worker {worker_id}",
        server=server_label(backend.client),
        log=log,
        wait=wait,
    )
    return bool(started)


def default_worker_id() -> str:
    """``host:pid:random`` (the host name with characters a worker id does
    not allow replaced by ``-``)."""
    host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())
    return f"{host or 'host'}:{os.getpid()}:{secrets.token_hex(3)}"
