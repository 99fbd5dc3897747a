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

import logging
import queue
import random
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import redis

from scheduler import defaults, stop_signals
from scheduler.backend import Backend
from scheduler.backend.caller import retries_until
from scheduler.backend.codes import CompleteCode, FailCode
from scheduler.backend.scripts import LeaseFit, LeaseReply
from scheduler.errors import ValidationError
from scheduler.task import Backoff
from scheduler.validation import validate_worker_id
from scheduler.worker.book import JobBook, LeaseEntry
from scheduler.worker.burst import run_until_empty
from scheduler.worker.capacity import Capacity
from scheduler.worker.execution import (
    AppLoader,
    LeasedJob,
    Outcome,
    TaskApp,
    TaskRuntime,
    load_task_app,
)
from scheduler.worker.heartbeat import Heartbeater
from scheduler.worker.lifecycle import (
    Runner,
    announce_started,
    default_worker_id,
    details,
    make_runner,
    register,
    start_runtime,
    stop_runtime,
)
from scheduler.worker.messages import Finished, Leased, Message, Stop, Woken
from scheduler.worker.observer import (
    Observers,
    WorkerObserver,
    default_queues,
    finish_outcome,
    log_finished,
    notify,
    refused,
)
from scheduler.worker.pacing import Pacing
from scheduler.worker.pool import ThreadRunner
from scheduler.worker.rounds import RoundTrips
from scheduler.worker.waiter import Waiter

__all__ = ["Worker", "WorkerApp", "WorkerObserver", "default_queues"]

log = logging.getLogger("scheduler.worker")


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
        :mod:`scheduler.backend.startup`). The shutdown hooks run on the way out.

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

    def _retry_deadline(self) -> float | None:
        """Until when a call may retry through a failover (None: no bound
        but the storage layer's own)."""
        return self._stop_deadline if self._stopping.is_set() else None

    def _serve(self, heart: Heartbeater) -> None:
        wait = self._stopping.wait
        if not register(self.backend, self.queues, heart, self.worker_id, wait):
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
            self._loop(waiter)
        finally:
            self._reclaim(waiter.close())
            heart.stop()
            if self._runner is not None:
                self._runner.shutdown()
            log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    # -- the dispatch loop --------------------------------------------------
    #
    # The dispatcher thread (the caller of run) owns every state change. Each
    # turn of _loop:
    #
    #   1. Take messages (_handle): a finished job's outcome is owed to Redis;
    #      the waiter's lease reply goes into the book (_take_reply, the one
    #      place a lease reply is taken); a wake marker makes its queue due.
    #   2. Stopping: stop the waiter, release buffered jobs, and exit once
    #      nothing is held (or, after the grace period, release the rest).
    #   3. One round trip per queue with something to send (_round): the
    #      starts, successes and failures owed, a lease for the free room (from
    #      each queue in order, when reports go out anyway or a queue is due),
    #      and a maintenance lease for every due queue (_pacing: promotion,
    #      reaping and the next wake time, whatever the queue's position).
    #      While the waiter's lease reply is outstanding, the round trip also
    #      repeats its request id without jobs (_take_ahead): what the server
    #      already leased to this worker is held before a slot is filled.
    #   4. Take the messages that came during the round trip (a waiter's lease
    #      reply), then start the best buffered jobs in free slots (queue
    #      order, ready score, sequence) -- after leasing, so a better job just
    #      leased starts before worse buffered ones. Their starts go out in
    #      the next turn's round trip (an attempt counts an execution that
    #      started).
    #   5. Nothing was sent: ask the waiter to block (when there is room) until
    #      the earliest due time, and wait for a message or that time.

    def _loop(self, waiter: Waiter) -> None:
        while True:
            for message in self._messages():
                self._handle(message)
            if waiter.took():  # the waiter started a job: book it first
                for message in self._messages():
                    self._handle(message)
            if self._stopping.is_set() and self._wind_down(waiter):
                return
            try:
                sent = self._round_if_needed(waiter.open_lease)
            except (redis.RedisError, OSError) as exc:
                self._back_off(exc)
                continue
            except Exception as exc:  # a bug in one job's bookkeeping must not end the worker
                log.exception("unexpected error in a worker round; retrying")
                self._back_off(exc)
                continue
            self._errors = 0
            # Messages that came during the round trip: a waiter's lease reply,
            # or that of a job the waiter started (booked before any start).
            for message in self._messages():
                self._handle(message)
            if waiter.took():  # started after that: its message is in the inbox
                for message in self._messages():
                    self._handle(message)
            self._start_buffered()
            if not sent:
                self._idle(waiter)

    def _messages(self, block: bool = False, timeout: float | None = None) -> list[Message]:
        """The inbox's messages; with ``block``, first wait up to ``timeout``
        seconds (None: forever) for one."""
        messages: list[Message] = []
        try:
            if block:
                messages.append(self._inbox.get(timeout=timeout))
            while True:
                messages.append(self._inbox.get_nowait())
        except queue.Empty:
            return messages

    def _handle(self, message: Message) -> None:
        try:
            self._dispatch(message)
        except Exception:  # one message's bookkeeping must not end the worker
            log.exception("unexpected error handling %s; going on", type(message).__name__)

    def _dispatch(self, message: Message) -> None:
        match message:
            case Finished(job=job, outcome=outcome):
                self._book.finished(job, outcome)
            case Leased(queue=q, reply=reply, asked=asked, woken=woken, started=started):
                self._take_reply(q, reply, asked, started)
                self._book.clear_ahead()
                if woken is not None and (woken != q or asked == 0):
                    if self._room() > 0:
                        self._pacing.woken(woken, time.monotonic())
                    else:  # full: hand the marker on to another worker
                        self._pass_on_wake(woken)
            case Woken(queue=q):
                self._pacing.woken(q, time.monotonic())
            case Stop():
                pass

    def _room(self) -> int:
        """Jobs this worker may lease now (0 while stopping)."""
        if self._stopping.is_set():
            return 0
        return self.concurrency + self.prefetch - self._book.active

    def _fit(self) -> LeaseFit | None:
        """This worker's capacity for a lease call now (None: unlimited)."""
        if self.capacity is None:
            return None
        return self.capacity.fit(self._book.held_resource)

    def _take_reply(
        self,
        queue_name: str,
        reply: LeaseReply,
        asked: int,
        started: LeaseEntry | None = None,
        *,
        ahead: bool = False,
    ) -> None:
        """Take a lease reply: hold and buffer its jobs (each lease once; the
        one the waiter ``started`` itself is held as running), and note when
        its queue is due again (not for ``ahead``: a repeat of the waiter's
        open request, see :meth:`_take_ahead`)."""
        shortest = 0  # shortest lease taken, ms (0: none)
        if len(reply.jobs) > (started is not None) and self._waiter is not None:
            # Jobs to buffer: the waiter may no longer start one itself (start
            # order); one it started meanwhile is in the inbox, taken before
            # any start (_loop, step 4).
            self._waiter.revoke()
        for job_id, text in reply.jobs:
            if started is not None and job_id == started.job.id:
                job = started.job if self._book.add_started(started) else None
            else:
                job = self._book.add(queue_name, job_id, text, ahead=ahead)
            if job is not None:
                lease_ms = job.options.lease_ms
                shortest = lease_ms if not shortest else min(shortest, lease_ms)
                notify(self._fan if self.observers else None, "on_leased", job)
        if not ahead:
            self._pacing.leased(queue_name, time.monotonic(), asked, len(reply.jobs), reply.wake_ms)
        if shortest and self._heart is not None:
            self._heart.notify(shortest)

    def _take_ahead(self, queue_name: str, reply: LeaseReply) -> None:
        """Take the leases the waiter's open request made in the server
        before its reply arrived (a round trip repeated the request id): the
        freed slot goes to the best job this worker holds in the server,
        and the waiter's reply does not add them again."""
        self._take_reply(queue_name, reply, 0, ahead=True)

    def _round_if_needed(self, ahead: tuple[str, str] | None = None) -> bool:
        """Step 3: send what is owed and lease what is due; False if nothing was.
        ``ahead``: the waiter's open lease (see :meth:`RoundTrips.run`),
        repeated in a round trip that is made anyway."""
        room, now = self._room(), time.monotonic()
        due = [] if self._stopping.is_set() else self._pacing.due(now, room > 0)
        owed = self._book.reports_due(now, defaults.START_REPORT_WAIT)
        want = room if room > 0 and (owed or due) else 0
        if not (owed or want or due):
            return False
        self._rounds.run(want, due, ahead)
        if self._heart is not None:
            self._heart.processed = self.processed
        return True

    def _idle(self, waiter: Waiter) -> None:
        """Step 5: wait for a message, the earliest due time or the stop deadline."""
        now = time.monotonic()
        if self._stopping.is_set():
            deadline = self._stop_deadline
        else:
            room = self._room()
            if room > 0:
                # With a capacity the waiter only waits (a lease of 0): the
                # dispatcher leases when woken, with its free capacity then.
                n = room if self.capacity is None else 0
                # The waiter may start the best job of its reply itself when
                # the start order allows it (nothing buffered, a free slot).
                direct = n > 0 and not self._book.buffered and self._book.running < self.concurrency
                waiter.request(n, self._pacing.block_for(now), direct=direct)
            deadline = self._pacing.next_due(room > 0)
            starts_at = self._book.reports_due_at(defaults.START_REPORT_WAIT)
            if starts_at is not None:
                deadline = min(deadline, starts_at)
        timeout = None if deadline is None else max(0.0, deadline - now)
        for message in self._messages(block=True, timeout=timeout):
            self._handle(message)

    def _back_off(self, exc: Exception) -> None:
        """A round trip failed: wait (taking messages), then look at every queue."""
        self._errors += 1
        pause = min(5.0, 0.1 * 2**self._errors)
        deadline = self._retry_deadline()
        if deadline is not None:  # stopping: back off no longer than the grace period
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        log.error("redis error in worker loop: %s; retrying in %.1f s", exc, pause)
        for message in self._messages(block=True, timeout=pause):
            self._handle(message)
        self._pacing.woken(None, time.monotonic())

    def _wind_down(self, waiter: Waiter) -> bool:
        """Step 2; True when the worker may exit."""
        if not self._waiter_closed:  # no more leasing: cut the waiter's pending lease
            self._waiter_closed = True
            self._reclaim(waiter.close())
        return self._shutdown_step()

    def _reclaim(self, lost_request: tuple[str, str] | None) -> None:
        """After the waiter stopped: take the leases its last call made (a
        message still in the inbox, or a reply cut off by the close: the
        same request is asked again and its reply cache answers), and
        release buffered jobs if stopping."""
        try:
            for message in self._messages():
                self._handle(message)
            if lost_request is not None:
                q, request = lost_request
                reply = self.backend.scripts.lease(self._keys[q], 0, self.worker_id, request)
                self._take_reply(q, reply, 0)
            if self._stopping.is_set() or not self._book.running:
                leftover = self._book.take_buffered()
                if leftover:
                    self._rounds.release(leftover)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not release jobs leased during shutdown: %s", exc)

    def _pass_on_wake(self, queue_name: str) -> None:
        try:
            self.backend.push_wake(queue_name)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not pass on a wake-up: %s", exc)

    def _shutdown_step(self) -> bool:
        """While stopping: release buffered jobs at once, running ones after the
        grace period. Returns True when the worker may exit.

        Redis failing (e.g. a failover longer than the grace period) does not
        keep the worker: what it could not release is tried again at the
        deadline, and what still fails then is left to lease expiry (the
        jobs run again: at-least-once)."""
        if self._book.buffered:
            try:
                self._rounds.release(self._book.take_buffered())
            except (redis.RedisError, OSError) as exc:  # still held: tried again below
                log.warning("could not release buffered jobs: %s", exc)
        if not len(self._book) and not self._book.pending:
            return True
        if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
            try:
                if self._book.pending:
                    self._rounds.run(0, [])
                self._rounds.release(self.snapshot())
            except (redis.RedisError, OSError) as exc:
                log.warning(
                    "could not report or release %d held job(s) at shutdown: %s; "
                    "their leases expire and they run again",
                    len(self._book),
                    exc,
                )
            return True
        return False

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

    def _queue_round(self) -> list[str]:
        """The order in which this round looks at the queues."""
        if self.queue_order == "strict" or len(self.queues) == 1:
            return self.queues
        # Weighted random order without replacement (Efraimidis & Spirakis 2006).
        return sorted(
            self.queues,
            key=lambda q: random.random() ** (1.0 / self.queue_weights[q]),
            reverse=True,
        )

    def _retry_delay_ms(self, job: LeasedJob, outcome: Outcome) -> int:
        if not outcome.retryable:
            return -1
        if outcome.retry_delay_ms is not None:  # decided where the task ran
            return outcome.retry_delay_ms
        task = self.app.tasks.get(job.task)
        backoff = task.backoff if task is not None else self.app.backoff
        return round(backoff.delay(job.attempt) * 1000)

    def _finish(self, job: LeasedJob, outcome: Outcome, code: CompleteCode | FailCode) -> None:
        self._book.drop(job)
        self.processed += 1
        took = time.monotonic() - job.started
        if self.observers:
            if refused(code):
                self._fan.on_lease_lost(job)
            self._fan.on_finished(job, finish_outcome(code), took)
        log_finished(job, outcome, code, took)

    def _make_runner(self) -> Runner:
        def report(job: LeasedJob, outcome: Outcome) -> None:
            self._inbox.put(Finished(job, outcome))

        return make_runner(self, report)
