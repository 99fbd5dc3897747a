"""The worker: lease in batches, run, heartbeat, report, shut down gracefully.

One dispatcher thread (the caller of :meth:`Worker.run`) owns every state
change. Each round it sends, in **one round trip** per queue, the reports of
all jobs that finished since the last round (one ``complete`` and one
``fail`` script call) and a ``lease`` call for as many jobs as it has room
for. Room is ``concurrency`` running jobs plus ``prefetch`` leased jobs
waiting in a local buffer, so the pool's threads keep working while the
dispatcher talks to Redis. Around it run the pool
(:mod:`~scheduler.worker.pool`), the :class:`~.waiter.Waiter` (blocking
``BLPOP`` when idle) and the :class:`~.heartbeat.Heartbeater` (leases of
running *and* buffered jobs).

The worker talks to Redis only through the app's storage layer
(:class:`scheduler.backend.Backend`); what it needs of the app is
:class:`WorkerApp`.

This module is the public API (arguments, :meth:`Worker.run`,
:meth:`Worker.stop`, start-up); the dispatch loop is
:mod:`~scheduler.worker.dispatcher` and its shutdown step
:mod:`~scheduler.worker.shutdown`, which :class:`Worker` inherits.

Delivery is at-least-once: a job runs again if its worker dies or loses its
lease before reporting, so tasks should be idempotent. A higher-priority job
enqueued while the buffer is full waits for the next free slot, behind at
most ``concurrency`` running jobs, and buffered jobs start by priority
(``prefetch=0`` turns prefetching off).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence

from scheduler import defaults, stop_signals
from scheduler.backend.caller import retries_until
from scheduler.errors import ValidationError
from scheduler.validation import validate_worker_id
from scheduler.worker.book import JobBook
from scheduler.worker.burst import run_until_empty
from scheduler.worker.capacity import Capacity
from scheduler.worker.children import ProcessRunner
from scheduler.worker.dispatcher import WorkerApp
from scheduler.worker.execution import (
    AppLoader,
    LeasedJob,
    TaskRuntime,
    load_task_app,
)
from scheduler.worker.heartbeat import Heartbeater
from scheduler.worker.lifecycle import (
    Runner,
    announce_started,
    default_worker_id,
    details,
    register,
    start_runtime,
    stop_runtime,
)
from scheduler.worker.messages import Message, Stop
from scheduler.worker.observer import (
    Observers,
    WorkerObserver,
    default_queues,
)
from scheduler.worker.pacing import Pacing
from scheduler.worker.pool import ThreadRunner
from scheduler.worker.rounds import RoundTrips
from scheduler.worker.shutdown import Shutdown
from scheduler.worker.waiter import Waiter

__all__ = ["Worker", "WorkerApp", "WorkerObserver", "default_queues"]

log = logging.getLogger("scheduler.worker")

#: Longest wait, seconds, for a process pool's children to start (import the
#: app, run its start-up hooks) before the worker's first lease.
CHILDREN_START_TIMEOUT = 60.0


class Worker(Shutdown):
    """Runs jobs from one or more queues.

    Args:
        app: the scheduler whose tasks this worker runs (anything that is a
            :class:`WorkerApp`; the worker reaches Redis through its
            ``backend``, also kept as :attr:`backend`).
        queues: queue names, in priority order for ``queue_order="strict"``;
            default (None or empty): every queue the app's tasks declare --
            the app's default queue first, then the others in the order
            their tasks were registered (:func:`default_queues`).
        concurrency: jobs run at once, >= 1.
        pool: ``"thread"`` (default) or ``"process"`` (CPU-bound tasks; needs
            ``app_path`` so children can import the app).
        app_path: ``"package.module:app"`` import path of ``app``.
        app_loader: how process-pool children import the app from
            ``app_path`` (a module-level function, e.g.
            ``scheduler.loading.import_app``); default
            :func:`~.execution.load_task_app`.
        queue_order: ``"strict"`` (earlier queues first) or ``"weighted"``
            (random order each round, by ``queue_weights``).
        queue_weights: queue -> relative weight for ``"weighted"`` (default 1).
        prefetch: jobs leased ahead and buffered beyond ``concurrency``
            (default: ``concurrency``; 0 = lease only for free slots).
        grace: seconds to let running jobs finish on shutdown before their
            leases are released back to ready.
        max_block: longest single idle block on Redis, seconds.
        worker_id: unique id (default ``host:pid:random``).
        observer: optional :class:`WorkerObserver` (e.g.
            :class:`scheduler.metrics.WorkerMetrics`); None costs nothing.
        observers: more observers, called after ``observer`` in order (one
            that raises is logged and does not keep the call from the others;
            :class:`~.observer.Observers`); all are in :attr:`observers`.
        capacity: resource units this worker runs at once (finite, > 0):
            it leases only jobs whose ``resource`` fits what its held jobs
            leave free (:mod:`~scheduler.worker.capacity`). None (default):
            unlimited, ``concurrency`` alone bounds it.
        backfill_wait: with a capacity, seconds a job too big for the free
            capacity may be passed by smaller jobs behind it (bounded
            backfill; default :data:`scheduler.defaults.BACKFILL_WAIT`);
            0 = strict, None = unbounded.

    Raises:
        ValidationError: bad arguments.
    """

    def __init__(
        self,
        app: WorkerApp,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = defaults.CONCURRENCY,
        pool: str = defaults.POOL,
        app_path: str | None = None,
        app_loader: AppLoader = load_task_app,
        queue_order: str = defaults.QUEUE_ORDER,
        queue_weights: dict[str, float] | None = None,
        prefetch: int | None = None,
        grace: float = defaults.GRACE,
        max_block: float = defaults.MAX_BLOCK,
        worker_id: str | None = None,
        observer: WorkerObserver | None = None,
        observers: Sequence[WorkerObserver] = (),
        capacity: float | None = None,
        backfill_wait: float | None = defaults.BACKFILL_WAIT,
    ) -> None:
        if concurrency < 1:
            raise ValidationError("concurrency must be >= 1")
        if prefetch is not None and prefetch < 0:
            raise ValidationError("prefetch must be >= 0")
        if pool not in ("thread", "process"):
            raise ValidationError("pool must be 'thread' or 'process'")
        if pool == "process" and not app_path:
            raise ValidationError("pool='process' needs app_path ('package.module:app')")
        if queue_order not in ("strict", "weighted"):
            raise ValidationError("queue_order must be 'strict' or 'weighted'")
        self.app = app
        self.backend = app.backend
        #: True when the queues were not given (see :func:`default_queues`).
        self.queues_from_tasks = not queues
        self.queues = list(queues or default_queues(app))
        if not self.queues or len(set(self.queues)) != len(self.queues):
            raise ValidationError("queues must be a non-empty list of distinct names")
        self._keys = {q: self.backend.queue(q) for q in self.queues}
        self.concurrency = concurrency
        self.prefetch = concurrency if prefetch is None else prefetch
        self.pool_kind = pool
        self.app_path = app_path
        self.app_loader = app_loader
        self.queue_order = queue_order
        self.queue_weights = {q: float((queue_weights or {}).get(q, 1.0)) for q in self.queues}
        if any(not w > 0 for w in self.queue_weights.values()):
            raise ValidationError("queue weights must be > 0")
        self.grace = grace
        self.max_block = max_block
        self.worker_id = validate_worker_id(worker_id or default_worker_id())
        #: The observers, in call order (append to add one).
        self.observers: list[WorkerObserver] = [*([observer] if observer else []), *observers]
        self._fan = Observers(self.observers)
        #: The app's hooks and this process's event loop (thread pool).
        self.runtime = TaskRuntime(app)
        self.capacity = None if capacity is None else Capacity(capacity, backfill_wait)
        self.processed = 0
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._book = JobBook(self.queues)
        self._pacing = Pacing(self.queues, max_block)
        self._heart: Heartbeater | None = None
        self._errors = 0
        self._waiter_closed = False
        self._waiter: Waiter | None = None
        self._rounds = RoundTrips(
            self.backend.scripts,
            self._keys.__getitem__,
            self._book,
            self.worker_id,
            self._queue_round,
            self._retry_delay_ms,
            self._finish,
            self._take_reply,
            lambda: self._fan if self.observers else None,
            self._fit,
            self._take_ahead,
        )
        self._stopping = threading.Event()
        self._stop_deadline: float | None = None
        self._runner: Runner | None = None

    @property
    def observer(self) -> WorkerObserver | None:
        """The first of :attr:`observers` (None without any); setting it
        replaces them all."""
        return self.observers[0] if self.observers else None

    @observer.setter
    def observer(self, value: WorkerObserver | None) -> None:
        self.observers[:] = [] if value is None else [value]

    # -- public control -----------------------------------------------------

    def stop(self, grace: float | None = None) -> None:
        """Stop leasing; let running jobs finish for ``grace`` seconds (default
        :attr:`grace`), then release the rest. Thread-safe; returns at once.
        A second call releases at once."""
        if not self._stopping.is_set():
            self._stop_deadline = time.monotonic() + (self.grace if grace is None else grace)
            self._stopping.set()
        else:
            self._stop_deadline = time.monotonic()
        self._inbox.put(Stop())

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT call :meth:`stop`; a second signal releases at once.
        Must be called from the main thread; takes over the process's
        :func:`signal.set_wakeup_fd` (:mod:`scheduler.stop_signals`)."""
        stop_signals.stop_on_signals(self.stop, log)

    def run_until_empty(self, timeout: float | None = None) -> bool:
        """Burst mode: run every ready and due job of this worker's queues
        (and what they enqueue), then return; True if emptied, False if
        ``timeout`` seconds passed first (:mod:`scheduler.worker.burst`)."""
        return run_until_empty(self, timeout)

    def snapshot(self) -> list[LeasedJob]:
        """The jobs this worker holds leases on now (running or buffered; a copy)."""
        return self._book.snapshot()

    # -- main loop ----------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop` is called (or a signal, if handlers are installed).

        Start-up runs the app's start-up hooks (thread pool; see
        :mod:`~.lifecycle`), then waits for Redis (transient errors are
        retried with backoff, one log line per attempt; see
        :mod:`scheduler.backend.startup`). With the process pool, the first lease
        waits until the children started (imported the app, ran the start-up
        hooks; at most :data:`CHILDREN_START_TIMEOUT` seconds, then a WARNING;
        not once stopped), so no job's duration counts their start-up. The
        shutdown hooks run on the way out.

        Raises:
            StartupError: Redis refused the credentials or the ACL denies
                this user (retrying would not help).
            Exception: what a start-up hook raised.
        """
        heart = Heartbeater(
            self.backend.scripts,
            self._keys.__getitem__,
            self.snapshot,
            self.backend,
            self.worker_id,
            details(self),
        )
        start_runtime(self.pool_kind, self.runtime)
        try:
            # Once stopped, a call retrying through a failover gives up at the
            # stop deadline: the shutdown stays within the grace period.
            with retries_until(self._retry_deadline):
                self._serve(heart)
        finally:
            stop_runtime(self.pool_kind, self.runtime)

    def _serve(self, heart: Heartbeater) -> None:
        wait = self._stopping.wait
        declared = default_queues(self.app)
        if not register(self.backend, self.queues, heart, self.worker_id, wait, declared):
            return
        self._runner = self._make_runner()
        runner = self._runner
        waiter = Waiter(
            self.backend.blocking_lease(self.queues, self.max_block),
            self.worker_id,
            self._inbox,
            runner.run_here if isinstance(runner, ThreadRunner) else None,
        )
        self._waiter = waiter
        announce_started(self)
        self._heart = heart
        heart.start()
        try:
            if isinstance(runner, ProcessRunner):
                self._await_children(runner)
            self._loop(waiter)
        finally:
            self._reclaim(waiter.close())
            heart.stop()
            if self._runner is not None:
                self._runner.shutdown()
            log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    def _await_children(self, runner: ProcessRunner) -> None:
        """Wait until the process pool's children are ready (:attr:`ProcessRunner.ready`)
        before the first lease: a job leased before would wait for its child,
        and the wait would count in its duration (logged, learned for
        ``time="auto"``). Returns early when stopped; after
        :data:`CHILDREN_START_TIMEOUT` seconds it logs a WARNING and returns
        (the worker leases; jobs wait for their children). A child that dies
        while starting counts as started (its slot replaces it for the next
        job)."""
        deadline = time.monotonic() + CHILDREN_START_TIMEOUT
        while not runner.ready and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning(
                    "worker %s: process-pool children not started after %g s; leasing anyway",
                    self.worker_id,
                    CHILDREN_START_TIMEOUT,
                )
                return
            # Woken (the runner's on_ready) or Stop; nothing else comes before
            # the first lease.
            self._take_messages(block=True, timeout=left)
