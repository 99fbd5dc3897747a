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

Delivery is at-least-once: a job runs again if its worker dies or loses its
lease before reporting, so tasks should be idempotent. A higher-priority job
enqueued while the buffer is full waits for the next free slot, behind at
most ``concurrency`` running jobs, and buffered jobs start by priority
(``prefetch=0`` turns prefetching off).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.codes import CompleteCode, FailCode, ReleaseCode
from scheduler.backend.scripts import ScriptCall
from scheduler.backend.startup import retry_start, server_label
from scheduler.errors import ValidationError
from scheduler.task import Backoff
from scheduler.validation import validate_worker_id
from scheduler.worker.book import JobBook
from scheduler.worker.children import ProcessRunner
from scheduler.worker.execution import AppLoader, LeasedJob, Outcome, TaskApp, load_task_app
from scheduler.worker.heartbeat import Heartbeater
from scheduler.worker.observer import (
    WorkerObserver,
    default_queues,
    finish_outcome,
    log_finished,
    log_started,
    notify,
    refused,
)
from scheduler.worker.pool import ThreadRunner
from scheduler.worker.waiter import Waiter

__all__ = ["Worker", "WorkerApp", "WorkerObserver", "default_queues"]

log = logging.getLogger("scheduler.worker")

_INF = float("inf")


class WorkerApp(TaskApp, Protocol):
    """What the worker needs of an app (:class:`scheduler.Scheduler` is one):
    its tasks and result size limit (:class:`~.execution.TaskApp`), its
    storage layer, its default queue and its default retry backoff."""

    @property
    def backend(self) -> Backend:
        """The storage layer."""
        ...

    @property
    def default_queue(self) -> str:
        """Queue served when the worker is given none."""
        ...

    @property
    def backoff(self) -> Backoff:
        """Retry delay policy of jobs whose task is not registered here."""
        ...


class Worker:
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
        host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())
        self.worker_id = validate_worker_id(
            worker_id or f"{host or 'host'}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self.observer = observer
        self.processed = 0
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._book = JobBook(self.queues)
        self._stopping = threading.Event()
        self._stop_deadline: float | None = None
        self._requests = itertools.count()
        self._open_requests: dict[str, str] = {}  # queue -> lease request id to retry
        self._runner: ThreadRunner | ProcessRunner | None = None

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
        self._inbox.put(("stop", None))

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT call :meth:`stop`; a second signal releases at once.
        Must be called from the main thread."""

        def handler(signum: int, _frame: object) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def snapshot(self) -> list[LeasedJob]:
        """The jobs this worker holds leases on now (running or buffered; a copy)."""
        return self._book.snapshot()

    # -- main loop ----------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop` is called (or a signal, if handlers are installed).

        Start-up waits for Redis (transient errors are retried with backoff,
        one log line per attempt; see :mod:`scheduler.backend.startup`).

        Raises:
            StartupError: Redis refused the credentials or the ACL denies
                this user (retrying would not help).
        """
        heart = Heartbeater(
            self.backend.scripts,
            self._keys.__getitem__,
            self.snapshot,
            self.backend,
            self.worker_id,
            {
                "queues": ",".join(self.queues),
                "concurrency": str(self.concurrency),
                "pool": self.pool_kind,
                "started": repr(time.time()),
            },
        )
        if not self._start_up(heart):
            return
        self._runner = self._make_runner()
        waiter = Waiter(
            self.backend.blocking_lease(self.queues, self.max_block), self.worker_id, self._inbox
        )
        log_started(
            worker_id=self.worker_id,
            server=server_label(self.backend.client),
            prefix=self.backend.prefix,
            queues=self.queues,
            queues_from_tasks=self.queues_from_tasks,
            tasks=sorted(self.app.tasks),
            pool=self.pool_kind,
            concurrency=self.concurrency,
            prefetch=self.prefetch,
        )
        heart.start()
        try:
            self._loop(waiter, heart)
        finally:
            self._reclaim(waiter.close())
            heart.stop()
            if self._runner is not None:
                self._runner.shutdown()
            log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    def _loop(self, waiter: Waiter, heart: Heartbeater) -> None:  # noqa: C901 -- one dispatch loop; its pacing state lives in locals
        capacity = self.concurrency + self.prefetch
        may_have_work = True
        next_due = 0.0  # monotonic time of the next ETA / lease deadline
        errors = 0
        waiter_closed = False
        signals: list[tuple[str, Any]] = []
        while True:
            signals += self._take_events()
            for kind, data in signals:  # from the waiter: a wake-up, or its lease
                if kind == "leased":
                    queue_name, reply, woken, asked = data
                    for job_id, text in reply.jobs:
                        self._take_lease(queue_name, job_id, text)
                    if reply.jobs:
                        heart.notify()
                    if (woken is not None and woken != queue_name) or len(reply.jobs) >= asked:
                        may_have_work = True  # another queue's marker, or maybe more
                    else:
                        wait = reply.wake_ms / 1000 if reply.wake_ms >= 0 else _INF
                        next_due = time.monotonic() + wait
                elif capacity - len(self._book) > 0:
                    may_have_work = True
                elif data:  # full: hand the marker on to another worker
                    self._pass_on_wake(data)
            signals = []
            stopping = self._stopping.is_set()
            try:
                if stopping:
                    if not waiter_closed:  # no more leasing: cut the waiter's pending lease
                        waiter_closed = True
                        self._reclaim(waiter.close())
                    if self._shutdown_step():
                        return
                else:
                    self._start_buffered()
                want = 0 if stopping else capacity - len(self._book)
                lease_now = want > 0 and (may_have_work or time.monotonic() >= next_due)
                if self._book.pending or lease_now:
                    got, wake_ms = self._round(want if lease_now else 0)
                    errors = 0
                    heart.processed = self.processed
                    if got:
                        heart.notify()
                    if lease_now:
                        may_have_work = got == want or wake_ms == 0
                        next_due = time.monotonic() + wake_ms / 1000 if wake_ms >= 0 else _INF
                    continue
            except (redis.RedisError, OSError) as exc:
                errors += 1
                pause = min(5.0, 0.1 * 2**errors)
                log.error("redis error in worker loop: %s; retrying in %.1f s", exc, pause)
                signals += self._take_events(block=True, timeout=pause)
                may_have_work = True
                continue
            # Nothing to send: wait for a finished job, the waiter, a due time or stop.
            room = capacity - len(self._book)
            if not stopping and room > 0:
                waiter.request(room)
            deadline = self._stop_deadline if stopping else (next_due if room > 0 else _INF)
            timeout = None if deadline == _INF else max(0.0, (deadline or 0.0) - time.monotonic())
            signals += self._take_events(block=True, timeout=timeout)

    def _start_up(self, heart: Heartbeater) -> bool:
        """Register the queues and announce this worker, waiting for Redis.
        Returns False if stopped before Redis answered."""

        def step() -> bool:
            for q in self.queues:
                self.backend.register_queue(q)
            heart.announce(0)
            return True

        started = retry_start(
            step,
            what=f"worker {self.worker_id}",
            server=server_label(self.backend.client),
            log=log,
            wait=self._stopping.wait,
        )
        return bool(started)

    def _take_events(
        self, block: bool = False, timeout: float | None = None
    ) -> list[tuple[str, Any]]:
        """Move finished jobs from the inbox to the pending reports and return
        the waiter's events (``wake``, ``leased``).

        Without ``block`` it only takes what is there; with it, it first waits
        up to ``timeout`` seconds (None: forever) for an event.
        """
        signals: list[tuple[str, Any]] = []
        while True:
            try:
                if block:
                    kind, data = self._inbox.get(timeout=timeout)
                    block = False
                else:
                    kind, data = self._inbox.get_nowait()
            except queue.Empty:
                return signals
            if kind == "done":
                self._book.finished(*data)
            elif kind in ("wake", "leased"):
                signals.append((kind, data))

    def _reclaim(self, lost_request: tuple[str, str] | None) -> None:
        """After the waiter stopped: release jobs its last lease may have taken
        (an event still in the inbox, or a reply cut off by the close)."""
        try:
            held = {(j.queue, j.id) for j in self._book.snapshot()}
            for kind, data in self._take_events():
                if kind == "leased":
                    queue_name, reply, _, _ = data
                    for job_id, text in reply.jobs:
                        self._take_lease(queue_name, job_id, text)
            if lost_request is not None:
                q, request = lost_request
                reply = self.backend.scripts.lease(self._keys[q], 0, self.worker_id, request)
                for job_id, text in reply.jobs:
                    if (q, job_id) not in held:
                        self._take_lease(q, job_id, text)
            if self._stopping.is_set() or not self._book.running:
                leftover = self._book.take_buffered()
                if leftover:
                    self._release(leftover)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not release jobs leased during shutdown: %s", exc)

    def _pass_on_wake(self, queue_name: str) -> None:
        try:
            self.backend.push_wake(queue_name)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not pass on a wake-up: %s", exc)

    def _shutdown_step(self) -> bool:
        """While stopping: release buffered jobs at once, running ones after the
        grace period. Returns True when the worker may exit."""
        if self._book.buffered:
            self._release(self._book.take_buffered())
        if not len(self._book) and not self._book.pending:
            return True
        if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
            if self._book.pending:
                self._round(0)
            self._release(self.snapshot())
            return True
        return False

    # -- one round trip: reports + lease ------------------------------------

    def _queue_round(self) -> list[str]:
        if self.queue_order == "strict" or len(self.queues) == 1:
            return self.queues
        # Weighted random order without replacement (Efraimidis & Spirakis 2006).
        return sorted(
            self.queues,
            key=lambda q: random.random() ** (1.0 / self.queue_weights[q]),
            reverse=True,
        )

    def _round(self, want: int) -> tuple[int, int]:
        """Report pending outcomes and lease up to ``want`` jobs; per queue one
        pipelined round trip. Returns (jobs leased, min wake ms or -1)."""
        pending = self._book.take_pending()
        by_queue: dict[str, list[tuple[LeasedJob, Outcome]]] = {}
        for job, outcome in pending:
            by_queue.setdefault(job.queue, []).append((job, outcome))
        order = self._queue_round()
        got, wake = 0, -1
        try:
            for q in order:
                items = by_queue.get(q, [])
                lease_n = max(0, want - got)
                if not items and lease_n <= 0:
                    continue
                n, w = self._queue_round_trip(q, items, lease_n)
                got += n
                if w >= 0:
                    wake = w if wake < 0 else min(wake, w)
        except BaseException:
            # Reports not applied yet (their jobs are still held) go again next
            # round; repeats are idempotent.
            self._book.restore_pending(pending)
            raise
        return got, wake

    def _queue_round_trip(
        self, q: str, items: list[tuple[LeasedJob, Outcome]], lease_n: int
    ) -> tuple[int, int]:
        scripts, qk = self.backend.scripts, self._keys[q]
        ok = [(j, o) for j, o in items if o.ok]
        bad = [(j, o) for j, o in items if not o.ok]
        calls: list[ScriptCall[Any]] = []
        if ok:
            calls.append(scripts.complete_call(qk, [(j.id, j.token, o.text) for j, o in ok]))
        if bad:
            calls.append(
                scripts.fail_call(
                    qk, [(j.id, j.token, o.text, self._retry_delay_ms(j, o)) for j, o in bad]
                )
            )
        if lease_n > 0:
            request = self._open_requests.setdefault(q, f"{self.worker_id}:{next(self._requests)}")
            calls.append(scripts.lease_call(qk, lease_n, self.worker_id, request))
        replies = scripts.run_many(calls)
        if ok:
            for (job, outcome), code in zip(ok, replies.pop(0), strict=True):
                self._finish(job, outcome, code)
        if bad:
            for (job, outcome), code in zip(bad, replies.pop(0), strict=True):
                self._finish(job, outcome, code)
        if lease_n <= 0:
            return 0, -1
        del self._open_requests[q]
        reply = replies.pop(0)
        for job_id, text in reply.jobs:
            self._take_lease(q, job_id, text)
        return len(reply.jobs), reply.wake_ms

    def _take_lease(self, queue_name: str, job_id: str, text: str) -> None:
        notify(self.observer, "on_leased", self._book.add(queue_name, job_id, text))

    def _start_buffered(self) -> None:
        runner = self._runner
        assert runner is not None
        if runner.broken:
            log.warning("process pool broke (a child died); starting a new one")
            runner.shutdown()
            runner = self._runner = self._make_runner()
        debug = log.isEnabledFor(logging.DEBUG)
        for job in self._book.start_next(self.concurrency):
            job.started = time.monotonic()
            if debug:
                log.debug(
                    "job %s task=%s queue=%s attempt=%d/%d started (priority %g)",
                    job.id,
                    job.task,
                    job.queue,
                    job.attempt,
                    job.options.max_attempts,
                    job.priority,
                )
            runner.submit(job)

    def _retry_delay_ms(self, job: LeasedJob, outcome: Outcome) -> int:
        if not outcome.retryable:
            return -1
        task = self.app.tasks.get(job.task)
        backoff = task.backoff if task is not None else self.app.backoff
        return round(backoff.delay(job.attempt) * 1000)

    def _finish(self, job: LeasedJob, outcome: Outcome, code: CompleteCode | FailCode) -> None:
        self._book.drop(job)
        self.processed += 1
        took = time.monotonic() - job.started
        if self.observer is not None:
            if refused(code):
                notify(self.observer, "on_lease_lost", job)
            name = finish_outcome(code)
            notify(self.observer, "on_finished", job, name, took)
        log_finished(job, outcome, code, took)

    def _release(self, jobs: list[LeasedJob]) -> None:
        """Give leased jobs back to their queues without losing an attempt."""
        by_queue: dict[str, list[LeasedJob]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        for q, items in by_queue.items():
            codes = self.backend.scripts.release(self._keys[q], [(j.id, j.token) for j in items])
            for job, code in zip(items, codes, strict=True):
                self._book.drop(job)
                back = code in (ReleaseCode.RELEASED, ReleaseCode.ALREADY_RELEASED)
                notify(self.observer, "on_released" if back else "on_lease_lost", job)
                log.info(
                    "job %s task=%s queue=%s attempt=%d released (%s)",
                    job.id,
                    job.task,
                    q,
                    job.attempt,
                    "back to ready" if back else "lease already lost",
                )

    def _make_runner(self) -> ThreadRunner | ProcessRunner:
        def report(job: LeasedJob, outcome: Outcome) -> None:
            self._inbox.put(("done", (job, outcome)))

        if self.pool_kind == "process":
            assert self.app_path is not None
            return ProcessRunner(self.app_path, self.concurrency, report, self.app_loader)
        return ThreadRunner(self.app, self.concurrency, report)
