"""The cron runner: enqueue due firings of every schedule, on time, exactly once.

Any number of runners may run at once (``scheduler cron module:app``, or a
thread of a worker started with ``--with-cron``); no leader is elected. Each
round a runner reads the earliest next fire time of every queue (the
``P:{Q}:cron`` ZSETs of the queues in the registry), and for each due
schedule computes the firing plan in Python (croniter, misfire policy) and
calls the ``cron_fire`` script, which applies it only if the stored next fire
time is still the one read -- so of several runners racing for a firing,
exactly one enqueues it and the others see it moved.

Between rounds the runner blocks on the ``P:schedules:changed`` pub/sub
channel (on its own connection, whose socket timeout exceeds the block) until
the next fire time, or until a schedule is created, changed, paused, resumed
or removed -- no fixed polling. Time comes from the Redis server (``TIME``);
the wait is measured on the local monotonic clock from that reading.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import redis

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.schedule_record import parse_stored
from scheduler.backend.subscription import Subscription
from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.schedule import Schedule
from scheduler.cron.store import ScheduleStore
from scheduler.timeutil import ms_to_datetime

__all__ = ["CronRunner"]

log = logging.getLogger("scheduler.cron")

#: Wait before retrying a schedule that cannot be fired (unreadable record,
#: server clock behind the fire time), seconds.
RETRY_BROKEN = 1.0


def _iso(ms: int) -> str:
    """A fire time (ms since the Unix epoch) for the log: ISO 8601, UTC, to the ms."""
    return ms_to_datetime(ms).isoformat(timespec="milliseconds")


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
        batch: most jobs one ``cron_fire`` call enqueues (catch-up).
        scan: most due schedules of one queue read per round trip.
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
    ) -> None:
        self.backend = app.backend
        self.store = app.schedules
        self.queues = [self.backend.queue(q).queue for q in queues] if queues else None
        self.sync = sync
        self.max_block = max_block
        self.batch = batch
        self.scan = scan
        #: Jobs enqueued by this runner.
        self.fired = 0
        #: Rounds run (for tests and monitoring).
        self.rounds = 0
        self._stop = threading.Event()
        self._waiting = False
        self._broken: dict[tuple[str, str], float] = {}
        self._thread: threading.Thread | None = None

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
        """Run in a daemon thread; returns it (stop with :meth:`stop`, then join)."""
        self._thread = threading.Thread(target=self.run, name="scheduler-cron", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread started by :meth:`start` to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT call :meth:`stop` (main thread only)."""

        def handler(signum: int, _frame: object) -> None:
            log.info("received %s: stopping cron", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- main loop ----------------------------------------------------------

    def run(self) -> None:
        """Fire schedules until :meth:`stop`. Upserts declared schedules first
        (``sync``); Redis errors are logged and retried with backoff."""
        errors = 0
        synced = not self.sync
        pubsub: Subscription | None = None
        log.info("cron runner started (queues: %s)", ",".join(self.queues or ["all"]))
        try:
            while not self._stop.is_set():
                try:
                    if pubsub is None:  # subscribe before a round: no change is missed
                        pubsub = self.backend.subscribe([self.store.channel], self.max_block)
                    if not synced:
                        counts = self.store.sync()
                        synced = True
                        log.info("declared schedules synced: %s", counts)
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
            log.info("cron runner stopped after enqueuing %d jobs", self.fired)

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

        Returns:
            Seconds until the next fire time (at most ``max_block``).
        """
        while True:
            self.rounds += 1
            queues = self.queues if self.queues is not None else self.backend.queue_names()
            now = self.backend.server_time_ms()
            read_at = time.monotonic()
            heads = self.backend.cron_heads(queues)
            next_due: int | None = None
            progressed = False
            stuck = False
            for q, score in zip(queues, heads, strict=True):
                if score is None:
                    continue
                if score > now:
                    next_due = score if next_due is None else min(next_due, score)
                    continue
                handled, blocked = self._fire_queue(q, now)
                progressed = progressed or handled > 0
                stuck = stuck or blocked
            if progressed and not self._stop.is_set():
                continue  # something moved: look again (more may be due)
            wait = self.max_block
            if next_due is not None:
                wait = min(wait, (next_due - now + 1) / 1000 - (time.monotonic() - read_at))
            if stuck:
                wait = min(wait, RETRY_BROKEN)
            return max(0.0, wait)

    def _fire_queue(self, queue: str, now: int) -> tuple[int, bool]:
        """Fire the due schedules of ``queue``; returns (schedules handled, any stuck)."""
        due = self.backend.due_schedules(queue, now, self.scan)
        if not due:
            return 0, False
        handled = 0
        stuck = False
        mono = time.monotonic()
        for sid, score, raw in due:
            retry_at = self._broken.get((queue, sid))
            if retry_at is not None and retry_at > mono:
                stuck = True
                continue
            try:
                if raw is None:
                    raise ValueError("in the cron set but has no record")
                stored = parse_stored(raw)
                schedule = Schedule.from_json(stored.definition)
            except (ValueError, InvalidScheduleError) as exc:
                self._defer(queue, sid, mono, "cannot fire: %s", exc)
                stuck = True
                continue
            expected = int(score)
            plan = schedule.plan(expected, now, self.batch)
            if plan is None:  # pragma: no cover - score <= now
                continue
            reply = self.store.fire(schedule, stored.digest, expected, plan)
            if reply.status == "early":
                self._defer(queue, sid, mono, "the Redis clock (%d) is behind it", reply.value)
                stuck = True
                continue
            if (
                reply.status == "stale"
                and reply.value == expected
                and self._unchanged(queue, sid, stored.digest)
            ):  # refused although nothing moved: an inconsistent record
                self._defer(queue, sid, mono, "is inconsistent (status/digest)")
                stuck = True
                continue
            self._broken.pop((queue, sid), None)
            handled += 1
            if reply.status == "fired":
                self.fired += reply.created
                if plan.fires or plan.missed:
                    log.info(
                        "schedule %s fired: %d job(s) for %s, %d missed (%s), next %s",
                        sid,
                        reply.created,
                        ",".join(_iso(f) for f in plan.fires) or "-",
                        plan.missed,
                        schedule.misfire,
                        "-" if plan.next_ms is None else _iso(plan.next_ms),
                    )
        return handled, stuck

    def _defer(self, queue: str, sid: str, mono: float, problem: str, *args: object) -> None:
        """Retry a schedule that cannot fire after :data:`RETRY_BROKEN` s; log it once."""
        if (queue, sid) not in self._broken:
            log.error(f"schedule %s in queue %s {problem}; retrying", sid, queue, *args)
        self._broken[(queue, sid)] = mono + RETRY_BROKEN

    def _unchanged(self, queue: str, sid: str, digest: str) -> bool:
        """True if the stored record of ``sid`` still has ``digest`` (or is unreadable)."""
        raw = self.backend.raw_schedule(queue, sid)
        if raw is None:
            return False
        try:
            return parse_stored(raw).digest == digest
        except ValueError:
            return True
