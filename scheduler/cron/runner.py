"""The cron runner: enqueue due firings of every schedule, on time, exactly once.

Any number of runners may run at once (``scheduler cron module:app``, or a
thread of a worker started with ``--with-cron``); no leader is elected.
One round, step by step:

0. Send what was planned ahead (step 4) and is due by the server clock as
   estimated from the last reading: all its windows in one round trip,
   before any read, so a runner waking at a fire time sends at once
   (:meth:`scheduler.cron.firing.Firer.fire_planned`).
1. Read the server clock and the earliest next fire time of every queue
   (the ``P:{Q}:cron`` ZSETs of the queues in the registry).
2. In each queue with something due, fire the due schedules: walk them
   once round from this runner's *home* place (:mod:`scheduler.cron.share`),
   window by window, one ``cron_fire`` call per window
   (:meth:`scheduler.cron.firing.Firer.fire_queue`; plans:
   :mod:`scheduler.cron.planning`; damaged records are dropped and logged
   once: :mod:`scheduler.cron.report`). The first schedule found fired by
   another process ends the walk (before it).
3. While anything moved, go to 1 (walking from a random place: what is
   left is another runner's, maybe a slow one's).
4. Otherwise compute the wait until the next fire time after now
   (schedules that cannot fire never shorten or lengthen it), plan ahead
   the coming firings of this runner's arc due by then, down to the
   ``cron_fire`` arguments (:mod:`scheduler.cron.ahead`; each holds only
   until the misfire policy would decide otherwise, and only for the
   record read), and block.

The block is on the ``P:schedules:changed`` pub/sub channel (on its own
connection, whose socket timeout exceeds the block), until the next fire
time or until a schedule is created, changed, paused, resumed or removed --
no fixed polling. Time comes from the Redis server (``TIME``); the wait is
measured on the local monotonic clock from that reading.

This module is the loop and its life cycle (start-up, waiting, stopping,
Redis errors); :mod:`scheduler.cron.firing` does the firing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import redis
from redis.exceptions import NoPermissionError

from scheduler import defaults, stop_signals
from scheduler.backend import Backend
from scheduler.backend.startup import StartupError, permanent_reason, retry_start, server_label
from scheduler.backend.subscription import Subscription
from scheduler.cron.firing import Firer
from scheduler.cron.report import FireReport
from scheduler.cron.schedule import Schedule
from scheduler.cron.share import Share
from scheduler.cron.store import ScheduleStore
from scheduler.errors import SchedulerError

__all__ = ["CronRunner"]

log = logging.getLogger("scheduler.cron")

#: Before a wait at least this long (seconds), the runner computes ahead the
#: plans of the schedules due by its end (:meth:`Firer.prepare_ahead`).
PREPARE_MIN_WAIT = 0.05


class CronApp(Protocol):
    """What the runner needs of an app (:class:`scheduler.Scheduler` is one):
    its storage layer and its schedule store."""

    @property
    def backend(self) -> Backend:
        """The storage layer."""
        ...

    @property
    def schedules(self) -> ScheduleStore:
        """The app's schedules (declared and stored)."""
        ...


class CronRunner:
    """Fires due cron and interval schedules.

    Args:
        app: the scheduler (its declared schedules are upserted on start);
            the runner uses only its ``backend`` and ``schedules``.
        queues: queues to serve; default every queue in the registry
            (re-read each round, so new queues are picked up).
        sync: upsert the app's declared schedules when :meth:`run` starts.
        max_block: longest single wait, seconds.
        batch: most jobs one schedule's plan enqueues (catch-up).
        scan: most due schedules of one queue read per round trip.
        per_call: most schedules in one ``cron_fire`` call.
        call_jobs: a ``cron_fire`` call takes no more schedules once its
            jobs reach this many.
        seed: seed of the home and stealing places (tests); None = random.
    """

    def __init__(
        self,
        app: CronApp,
        queues: Sequence[str] | None = None,
        *,
        sync: bool = True,
        max_block: float = defaults.MAX_BLOCK,
        batch: int = defaults.CRON_BATCH,
        scan: int = defaults.CRON_SCAN,
        per_call: int = defaults.CRON_CALL_SCHEDULES,
        call_jobs: int = defaults.CRON_CALL_JOBS,
        seed: int | None = None,
    ) -> None:
        self.backend = app.backend
        self.store = app.schedules
        self.queues = [self.backend.queue(q).queue for q in queues] if queues else None
        self.sync = sync
        self.max_block = max_block
        self.batch = batch
        self.scan = scan
        self.per_call = max(1, per_call)
        self.call_jobs = max(1, call_jobs)
        #: Rounds run (for tests and monitoring).
        self.rounds = 0
        self._stop = threading.Event()
        self._waiting = False
        self._share = Share(self.per_call, seed)
        self._report = FireReport()
        self._firer = Firer(
            self.backend,
            self.store,
            self._share,
            self._report,
            self._stop,
            batch=self.batch,
            scan=self.scan,
            per_call=self.per_call,
            call_jobs=self.call_jobs,
        )
        self._thread: threading.Thread | None = None

    @property
    def fired(self) -> int:
        """Jobs enqueued by this runner."""
        return self._report.jobs

    # -- control ------------------------------------------------------------

    def stop(self) -> None:
        """Ask the runner to stop (thread-safe; wakes it if it is waiting)."""
        self._stop.set()
        with contextlib.suppress(redis.RedisError, OSError):
            self.backend.publish(self.store.channel, "")

    @property
    def waiting(self) -> bool:
        """True while the runner is blocked until the next fire time or a change."""
        return self._waiting

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def start(self) -> threading.Thread:
        """Run in a daemon thread; returns it (stop with :meth:`stop`, then join).
        A :class:`StartupError` is logged (one ERROR line) and ends the thread."""
        self._thread = threading.Thread(target=self._run_logged, name="scheduler-cron", daemon=True)
        self._thread.start()
        return self._thread

    def _run_logged(self) -> None:
        try:
            self.run()
        except StartupError as exc:
            log.error("%s", exc)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread started by :meth:`start` to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT call :meth:`stop` (main thread only), from a thread
        of their own whichever thread took the signal
        (:func:`scheduler.stop_signals.stop_on_signals`)."""
        stop_signals.stop_on_signals(self.stop, log, "cron")

    # -- main loop ----------------------------------------------------------

    def run(self) -> None:
        """Fire schedules until :meth:`stop`.

        Start-up (subscribe, upsert the declared schedules if ``sync``)
        waits for Redis: transient errors are retried with backoff, one log
        line per attempt (:mod:`scheduler.backend.startup`). Later Redis
        errors are logged and retried with backoff.

        Raises:
            StartupError: Redis refused the credentials, the ACL denies this
                user, or a declared schedule cannot be stored (e.g. its
                stored record is damaged).
        """
        errors = 0
        server = server_label(self.backend.client)
        pubsub: Subscription | None = None
        started = False
        try:
            pubsub = retry_start(
                self._start_up, what="cron runner", server=server, log=log, wait=self._stop.wait
            )
            if pubsub is None:  # stopped before Redis answered
                return
            started = True
            log.info(
                "cron runner started: redis=%s prefix=%s queues=%s",
                server,
                self.backend.prefix,
                ",".join(self.queues or ["all"]),
            )
            while not self._stop.is_set():
                try:
                    if pubsub is None:  # subscribe before a round: no change is missed
                        pubsub = self.backend.subscribe([self.store.channel], self.max_block)
                    wait = self.run_once()
                    errors = 0
                    self._wait(pubsub, wait)
                except (redis.RedisError, OSError) as exc:
                    errors += 1
                    pause = min(5.0, 0.1 * 2**errors)
                    log.error("redis error in cron runner: %s; retrying in %.1f s", exc, pause)
                    if pubsub is not None:
                        with contextlib.suppress(redis.RedisError, OSError):
                            pubsub.close()
                        pubsub = None
                    self._stop.wait(pause)
        finally:
            if pubsub is not None:
                with contextlib.suppress(redis.RedisError, OSError):
                    pubsub.close()
            if started:
                log.info("cron runner stopped after enqueuing %d jobs", self.fired)

    def _start_up(self) -> Subscription:
        """Subscribe to schedule changes (before the first round: no change
        is missed) and upsert the declared schedules if ``sync``."""
        pubsub = self.backend.subscribe([self.store.channel], self.max_block)
        try:
            if self.sync:
                counts = {"created": 0, "updated": 0, "unchanged": 0, "replaced": 0}
                for schedule in self.store.declared:
                    outcome = self._store_declared(schedule)
                    counts[outcome] = counts.get(outcome, 0) + 1
                log.info("declared schedules synced: %s", counts)
        except BaseException:
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.close()
            raise
        return pubsub

    def _store_declared(self, schedule: Schedule) -> str:
        """Upsert one declared schedule; returns its outcome.

        Raises:
            StartupError: it cannot be stored for a reason other than a
                transient or credentials/ACL error (those propagate as they
                are, for :func:`retry_start` to retry or report).
        """
        try:
            return self.store.add(schedule).outcome
        except (redis.RedisError, OSError) as exc:
            reason = permanent_reason(exc)
            credentials = isinstance(exc, redis.AuthenticationError | NoPermissionError)
            if reason is None or credentials:
                raise
            problem = reason
        except (ValueError, SchedulerError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        raise StartupError(
            f"cron runner cannot start: declared schedule {schedule.id!r} in queue "
            f"{schedule.queue!r} cannot be stored ({problem}); fix or remove it "
            "(scheduler schedules remove) and start again"
        )

    def _wait(self, pubsub: Subscription, seconds: float) -> None:
        """Block until ``seconds`` pass or a schedule change is announced."""
        deadline = time.monotonic() + seconds
        self._waiting = True
        try:
            while not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if pubsub.get(timeout=left) is not None:
                    while pubsub.get(timeout=0) is not None:  # take the burst at once
                        pass
                    return
        finally:
            self._waiting = False

    def run_once(self) -> float:
        """Fire everything due now, in every served queue.

        First what was planned ahead and is due; then each pass reads the
        earliest next fire time of every queue; in each queue with something
        due it fires the due schedules window by window, and passes again
        while anything moved.

        Returns:
            Seconds until the next fire time of a schedule that can fire
            (at most ``max_block``; a schedule this runner holds back is
            retried after :data:`~scheduler.cron.report.RETRY_BROKEN`).
        """
        self._share.begin_burst()
        self._firer.fire_planned()
        while True:
            self.rounds += 1
            queues = self.queues if self.queues is not None else self.backend.queue_names()
            now = self.backend.server_time_ms()
            read_at = time.monotonic()
            self._firer.clock = (now, read_at)
            heads = self.backend.cron_heads(queues)
            progressed = False
            for q, score in zip(queues, heads, strict=True):
                if score is not None and score <= now and self._firer.fire_queue(q, now):
                    progressed = True
            if progressed and not self._stop.is_set():
                continue  # something moved: look again (more may be due)
            self._share.end_burst()
            wait = self._next_wait(queues, now, read_at)
            if wait >= PREPARE_MIN_WAIT:
                # The server time at the end of the wait: `now` plus the time since it was read.
                until_ms = now + int((time.monotonic() - read_at + wait) * 1000) + 1
                self._firer.prepare_ahead(queues, until_ms)
                wait = self._next_wait(queues, now, read_at)
            return wait

    def _next_wait(self, queues: Sequence[str], now: int, read_at: float) -> float:
        """Seconds until the earliest fire time after ``now`` (ms) in ``queues``,
        or until a held-back schedule is retried; at most ``max_block``."""
        wait = self.max_block
        elapsed = time.monotonic() - read_at
        for next_ms in self.backend.cron_next_after(queues, now):
            if next_ms is not None:
                wait = min(wait, (next_ms - now + 1) / 1000 - elapsed)
        retry = self._report.next_retry(time.monotonic())
        if retry is not None:
            wait = min(wait, retry)
        return max(0.0, wait)
