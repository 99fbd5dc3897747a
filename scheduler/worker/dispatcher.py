"""The worker's dispatch loop: the one thread that owns every state change.

:class:`Dispatcher` is the part of :class:`~.worker.Worker` that runs after
start-up: it takes the inbox's messages (finished jobs, the waiter's lease
replies, wake markers), takes lease replies into the :class:`~.book.JobBook`,
makes the round trips (:class:`~.rounds.RoundTrips`), starts buffered jobs
on the pool and waits when there is nothing to send. Its state is set up by
:class:`~.worker.Worker` (which validates the arguments); the shutdown step
comes from :class:`~.shutdown.Shutdown`. What the worker needs of an app,
:class:`WorkerApp`, is here too (re-exported by :mod:`.worker`).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

import redis

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.codes import CompleteCode, FailCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.scripts import LeaseFit, LeaseReply
from scheduler.task import Backoff
from scheduler.worker.book import JobBook, LeaseEntry
from scheduler.worker.capacity import Capacity
from scheduler.worker.execution import AppLoader, LeasedJob, Outcome, TaskApp, TaskRuntime
from scheduler.worker.heartbeat import Heartbeater
from scheduler.worker.lifecycle import Runner, make_runner
from scheduler.worker.messages import Finished, Leased, Message, Stop, Woken
from scheduler.worker.observer import (
    Observers,
    WorkerObserver,
    finish_outcome,
    log_finished,
    notify,
    refused,
)
from scheduler.worker.pacing import Pacing
from scheduler.worker.rounds import RoundTrips
from scheduler.worker.waiter import Waiter

__all__ = ["Dispatcher", "WorkerApp"]

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


class Dispatcher(ABC):
    """The dispatch loop of a :class:`~.worker.Worker` (its state is set by
    the worker's constructor; see there for the arguments)."""

    app: WorkerApp
    backend: Backend
    queues: list[str]
    concurrency: int
    prefetch: int
    pool_kind: str
    app_path: str | None
    app_loader: AppLoader
    queue_order: str
    queue_weights: dict[str, float]
    max_block: float
    worker_id: str
    observers: list[WorkerObserver]
    runtime: TaskRuntime
    capacity: Capacity | None
    processed: int
    _keys: dict[str, QueueKeys]
    _fan: Observers
    _inbox: queue.SimpleQueue[Message]
    _book: JobBook
    _pacing: Pacing
    _heart: Heartbeater | None
    _errors: int
    _waiter_closed: bool
    _waiter: Waiter | None
    _rounds: RoundTrips
    _stopping: threading.Event
    _stop_deadline: float | None
    _runner: Runner | None

    @abstractmethod
    def _wind_down(self, waiter: Waiter) -> bool:
        """Step 2 (stopping): True when the worker may exit (:mod:`.shutdown`)."""

    def _retry_deadline(self) -> float | None:
        """Until when a call may retry through a failover (None: no bound
        but the storage layer's own)."""
        return self._stop_deadline if self._stopping.is_set() else None

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
            self._take_messages()
            if waiter.took():  # the waiter started a job: book it first
                self._take_messages()
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
            self._take_messages()
            if waiter.took():  # started after that: its message is in the inbox
                self._take_messages()
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

    def _take_messages(self, block: bool = False, timeout: float | None = None) -> None:
        """Handle the inbox's messages (see :meth:`_messages`) in order; a
        finished job (one per job, the most common) on a fast path."""
        finished = self._book.finished
        for message in self._messages(block, timeout):
            if type(message) is Finished:
                try:
                    finished(message.job, message.outcome)
                except Exception:  # as in _handle
                    log.exception("unexpected error handling Finished; going on")
            else:
                self._handle(message)

    def _handle(self, message: Message) -> None:
        try:
            self._dispatch(message)
        except Exception:  # one message's bookkeeping must not end the worker
            log.exception("unexpected error handling %s; going on", type(message).__name__)

    def _dispatch(self, message: Message) -> None:
        """Handle one message other than :class:`Finished` (which
        :meth:`_take_messages` books on its fast path)."""
        match message:
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
        fan = self._fan if self.observers else None
        book = self._book
        for job_id, text in reply.jobs:
            if started is not None and job_id == started.job.id:
                job = started.job if book.add_started(started) else None
            else:
                job = book.add(queue_name, job_id, text, ahead=ahead)
            if job is not None:
                lease_ms = job.options.lease_ms
                if not shortest or lease_ms < shortest:
                    shortest = lease_ms
                if fan is not None:
                    notify(fan, "on_leased", job)
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
        self._take_messages(block=True, timeout=timeout)

    def _back_off(self, exc: Exception) -> None:
        """A round trip failed: wait (taking messages), then look at every queue."""
        self._errors += 1
        pause = min(5.0, 0.1 * 2**self._errors)
        deadline = self._retry_deadline()
        if deadline is not None:  # stopping: back off no longer than the grace period
            pause = max(0.0, min(pause, deadline - time.monotonic()))
        log.error("redis error in worker loop: %s; retrying in %.1f s", exc, pause)
        self._take_messages(block=True, timeout=pause)
        self._pacing.woken(None, time.monotonic())

    def _pass_on_wake(self, queue_name: str) -> None:
        try:
            self.backend.push_wake(queue_name)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not pass on a wake-up: %s", exc)

    def _start_buffered(self) -> None:
        runner = self._runner
        assert runner is not None
        if runner.broken:
            log.warning("process pool broke (a child died); starting a new one")
            runner.shutdown()
            runner = self._runner = self._make_runner()
        debug = log.isEnabledFor(logging.DEBUG)
        now = time.monotonic()
        for job in self._book.start_next(self.concurrency):
            job.started = now
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

    def _finish(
        self,
        items: Sequence[tuple[LeasedJob, Outcome]],
        codes: Sequence[CompleteCode | FailCode],
    ) -> None:
        """Jobs whose reports Redis answered (``codes``, one per item): drop
        them, count them, tell the observers and log each."""
        self._book.drop_all([job for job, _ in items])
        self.processed += len(items)
        now = time.monotonic()
        fan = self._fan if self.observers else None
        quiet = not log.isEnabledFor(logging.INFO)  # no line for a success
        for (job, outcome), code in zip(items, codes, strict=True):
            took = now - job.started
            if fan is not None:
                if refused(code):
                    fan.on_lease_lost(job)
                fan.on_finished(job, finish_outcome(code), took)
            if not (quiet and code is CompleteCode.RECORDED):
                log_finished(job, outcome, code, took)

    def _make_runner(self) -> Runner:
        def report(job: LeasedJob, outcome: Outcome) -> None:
            self._inbox.put(Finished(job, outcome))

        # A process pool's children are ready: wake the dispatcher (Worker._serve).
        return make_runner(self, report, lambda: self._inbox.put(Woken()))
