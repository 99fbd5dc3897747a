"""The cron runner: enqueue due firings of every schedule, on time, exactly once.

Any number of runners may run at once (``scheduler cron module:app``, or a
thread of a worker started with ``--with-cron``); no leader is elected.
One round, step by step:

0. Send what was planned ahead (step 4) and is due by the server clock as
   estimated from the last reading: all its windows in one round trip,
   before any read, so a runner waking at a fire time sends at once.
1. Read the server clock and the earliest next fire time of every queue
   (the ``P:{Q}:cron`` ZSETs of the queues in the registry).
2. In each queue with something due, read the ids of up to ``scan`` due
   schedules and walk them once round from this runner's *home* place
   (:meth:`CronRunner._rotate`), window by window: read a window of
   ``per_call`` records in one round trip (leaving out those another
   process fired meanwhile), plan each in Python (croniter, misfire
   policy; a damaged record becomes a "drop" entry) and fire the window
   with one ``cron_fire`` call: each entry applies only if the schedule's
   score and record are still exactly those read, so of several runners
   racing for a firing exactly one enqueues it. Log what was dropped (once:
   it left the cron set). The first schedule found fired by another
   process ends the walk (before it).
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
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import redis
from redis.exceptions import NoPermissionError

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.codes import FireCode
from scheduler.backend.cron_scripts import FireEntry, FireOutcome
from scheduler.backend.schedules import DueSchedule
from scheduler.backend.startup import StartupError, permanent_reason, retry_start, server_label
from scheduler.backend.subscription import Subscription
from scheduler.cron.ahead import ReadyFiring, plan_ahead
from scheduler.cron.errors import DamagedScheduleError
from scheduler.cron.policy import FirePlan
from scheduler.cron.schedule import Schedule
from scheduler.cron.state import ScheduleStatus, decode_record
from scheduler.cron.store import ScheduleStore
from scheduler.errors import SchedulerError
from scheduler.timeutil import ms_to_datetime

__all__ = ["CronRunner"]

log = logging.getLogger("scheduler.cron")

#: Wait before retrying a schedule that cannot be fired yet (the server
#: clock behind its fire time), seconds. Damaged records are not retried:
#: they leave the cron set.
RETRY_BROKEN = 1.0

#: Before a wait at least this long (seconds), the runner computes ahead the
#: plans of the schedules due by its end (:meth:`CronRunner._prepare_ahead`).
PREPARE_MIN_WAIT = 0.05


def _leading(chunk: Sequence[tuple[str, int]], read: list[DueSchedule]) -> list[DueSchedule]:
    """The records ``read`` of the leading run of ``chunk`` (ids in walk
    order) that were all still due: up to the first one gone."""
    kept: list[DueSchedule] = []
    for (sid, _), due in zip(chunk, read, strict=False):
        if due.schedule_id != sid:
            break
        kept.append(due)
    return kept


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
        self._random = random.Random(seed)
        #: Jobs enqueued by this runner.
        self.fired = 0
        #: Rounds run (for tests and monitoring).
        self.rounds = 0
        self._stop = threading.Event()
        self._waiting = False
        self._held: dict[tuple[str, str], float] = {}
        #: Per queue: the schedule id where this runner's walks start
        #: (:meth:`_rotate`), how many schedules its last burst fired, and
        #: how many the current burst fired so far.
        self._home: dict[str, str] = {}
        self._share: dict[str, int] = {}
        self._burst: dict[str, int] = {}
        #: Per queue: the firings of this runner's arc planned ahead
        #: (:meth:`_prepare_ahead`), in walk order.
        self._ready: dict[str, list[ReadyFiring]] = {}
        #: The last server time read (ms) and the monotonic time then.
        self._clock: tuple[int, float] | None = None
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
        """SIGTERM/SIGINT call :meth:`stop` (main thread only)."""

        def handler(signum: int, _frame: object) -> None:
            log.info("received %s: stopping cron", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

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
            retried after :data:`RETRY_BROKEN`).
        """
        self._burst = {}
        self._fire_planned()
        while True:
            self.rounds += 1
            queues = self.queues if self.queues is not None else self.backend.queue_names()
            now = self.backend.server_time_ms()
            read_at = time.monotonic()
            self._clock = (now, read_at)
            heads = self.backend.cron_heads(queues)
            progressed = False
            for q, score in zip(queues, heads, strict=True):
                if score is not None and score <= now and self._fire_queue(q, now):
                    progressed = True
            if progressed and not self._stop.is_set():
                continue  # something moved: look again (more may be due)
            self._share.update(self._burst)
            for queue, fired in self._burst.items():
                if 2 * fired < self.per_call:  # home next to another runner's: move
                    self._home.pop(queue, None)
            wait = self._next_wait(queues, now, read_at)
            if wait >= PREPARE_MIN_WAIT:
                # The server time at the end of the wait: `now` plus the time since it was read.
                until_ms = now + int((time.monotonic() - read_at + wait) * 1000) + 1
                self._prepare_ahead(queues, until_ms)
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
        mono = time.monotonic()
        self._held = {key: at for key, at in self._held.items() if at > mono}
        if self._held:
            wait = min(wait, min(self._held.values()) - mono)
        return max(0.0, wait)

    def _prepare_ahead(self, queues: Sequence[str], until_ms: int) -> None:
        """Plan ahead, while there is time to wait, the coming firings of
        the schedules this runner expects to fire by ``until_ms`` (ms), down
        to the ``cron_fire`` arguments (:mod:`scheduler.cron.ahead`): when
        they are due, :meth:`_fire_ready` only sends them.

        What it expects to fire is its *arc*: the due list from its home
        place (:meth:`_rotate`) on, as many as it fired in its last burst plus
        one window (all of them the first time). Five processes thus prepare
        about a fifth each instead of everything each. Damaged records are
        skipped here (they are dropped when due)."""
        self._ready = {}
        for queue in queues:
            upcoming = self.backend.due_ids(queue, until_ms, self.scan)
            if not upcoming or self._stop.is_set():
                continue
            share = self._share.get(queue)
            count = len(upcoming) if share is None else share + self.per_call
            arc = self._rotate(queue, upcoming, home=True)[:count]
            due = self.backend.due_records(queue, arc, current=False)
            self._ready[queue] = plan_ahead(self.store, queue, due, self.batch)

    def _rotate(
        self, queue: str, due: list[tuple[str, int]], *, home: bool
    ) -> list[tuple[str, int]]:
        """``due`` rotated to start at this runner's home place (``home``:
        the first id at or after its home id) or at a random place.

        The home place is chosen at random once and kept, so a runner's arc
        -- from its home to where it meets schedules another process already
        fired -- stays about the same second after second, and is what it
        prepares ahead. A runner that fired less than half a window in its
        last burst (its home is next to another's) chooses a new home."""
        start = -1
        cursor = self._home.get(queue)
        if home and cursor is not None:
            start = next((i for i, (sid, _) in enumerate(due) if sid >= cursor), -1)
        if start < 0:
            start = self._random.randrange(len(due))
            if home:
                self._home[queue] = due[start][0]
        return due[start:] + due[:start]

    def _fire_queue(self, queue: str, now: int) -> bool:
        """Fire the due schedules of ``queue``, window by window; True if
        anything moved (fired, dropped, or found moved by another process).

        The walk starts at this runner's place in the due list (:meth:`_rotate`)
        and goes round it once. Each window of ``per_call`` schedules is read
        in one round trip that also leaves out those another process already
        fired, so concurrent cron processes share the work instead of each
        planning everything; what they still race for, ``cron_fire`` applies
        once (the others get FIRE_STALE, and a stale answer always means the
        stored state changed since it was read: no spinning).
        """
        ready = self._ready.pop(queue, None)
        if ready and queue not in self._burst:
            # What this runner planned ahead, from its home place; the rest
            # (stolen from a random place, or planned again) the usual way.
            moved, self._burst[queue] = self._fire_ready(queue, ready, now)
            if moved:
                return True
        mono = time.monotonic()
        due = [
            (sid, score)
            for sid, score in self.backend.due_ids(queue, now, self.scan)
            if self._held.get((queue, sid), 0.0) <= mono
        ]
        if not due:
            return False
        # The first pass of a burst starts at home; later ones (stealing what
        # is left) at a random place.
        walk = self._rotate(queue, due, home=queue not in self._burst)
        moved = fired = 0
        for i in range(0, len(walk), self.per_call):
            if self._stop.is_set():
                break
            chunk = walk[i : i + self.per_call]
            window = self.backend.due_records(queue, chunk)
            collided = len(window) < len(chunk)  # some were fired by another process
            if collided:  # another process works from here on: stop before it
                window = _leading(chunk, window)
                moved += 1
            while window:
                entries: list[FireEntry] = []
                notes: list[tuple[str, FirePlan | None, str]] = []
                jobs = 0
                while window and jobs < self.call_jobs:
                    entry, note = self._prepare(queue, window.pop(0), now)
                    entries.append(entry)
                    notes.append(note)
                    jobs += len(entry.jobs)
                reply = self.store.fire(queue, entries)
                for (sid, plan, problem), outcome in zip(notes, reply.outcomes, strict=True):
                    moved += self._report(queue, sid, plan, problem, outcome, mono)
                    fired += outcome.code is FireCode.FIRED
            if collided:
                break  # look again: what is left is stolen from a random place
        self._burst[queue] = self._burst.get(queue, 0) + fired
        return moved > 0

    def _fire_planned(self) -> None:
        """At the start of a round, before any read: send the firings planned
        ahead that are due by the server clock as estimated from the last
        reading (it only runs late: the reading was taken before the reply
        came), so a runner waking at a fire time sends its work at once.
        What the script finds not yet due (clocks drifting) is looked at
        again by the round."""
        if not self._ready or self._clock is None:
            return
        server_ms, read_at = self._clock
        now = server_ms + int((time.monotonic() - read_at) * 1000)
        for queue in list(self._ready):
            ready = self._ready[queue]
            if not any(r.score <= now for r in ready):
                continue
            del self._ready[queue]
            _, self._burst[queue] = self._fire_ready(queue, ready, now)

    def _fire_ready(self, queue: str, ready: list[ReadyFiring], now: int) -> tuple[int, int]:
        """Send the firings planned ahead that are due at ``now`` (ms): all
        windows in one round trip (one ``cron_fire`` call each, run in
        order). Those another process fired first, or that changed, come
        back stale and cost nothing else; what is left of this runner's arc
        is then looked at again with fresh reads. Returns (entries that
        moved, jobs fired)."""
        mono = time.monotonic()
        held = self._held
        due = [r for r in ready if r.score <= now and held.get((queue, r.schedule_id), 0.0) <= mono]
        if not due or self._stop.is_set():
            return 0, 0
        step = min(self.per_call, self.call_jobs)  # one job per on-time plan
        windows = [due[i : i + step] for i in range(0, len(due), step)]
        replies = self.store.fire_many(queue, [[r.args for r in w] for w in windows])
        moved = fired = 0
        for window, reply in zip(windows, replies, strict=True):
            for r, outcome in zip(window, reply.outcomes, strict=True):
                if outcome.code is FireCode.EARLY:  # the estimated clock ran ahead
                    moved += 1  # not held back: the round looks again
                    continue
                moved += self._report(queue, r.schedule_id, r.plan, "", outcome, mono)
                fired += outcome.code is FireCode.FIRED
        return moved, fired

    def _prepare(
        self, queue: str, due: DueSchedule, now: int
    ) -> tuple[FireEntry, tuple[str, FirePlan | None, str]]:
        """The ``cron_fire`` entry of one due schedule: its firing plan, or a
        drop if its record is damaged (the note says which, and why)."""
        sid = due.schedule_id
        drop = FireEntry(sid, due.raw, due.score, drop=True)
        try:
            stored, schedule = decode_record(queue, sid, due.record)
        except DamagedScheduleError as exc:
            return drop, (sid, None, exc.reason)
        if stored.status is not ScheduleStatus.ACTIVE:
            return drop, (sid, None, f"in the cron set while {stored.status.value}")
        plan = schedule.plan(due.score, now, self.batch)
        if plan is None:  # pragma: no cover - due.score <= now
            plan = FirePlan((), 0, due.score + 1)
        return self.store.entry(schedule, due.raw, due.score, plan), (sid, plan, "")

    def _report(
        self,
        queue: str,
        sid: str,
        plan: FirePlan | None,
        problem: str,
        outcome: FireOutcome,
        mono: float,
    ) -> bool:
        """Log and count one entry's outcome; True if the schedule moved."""
        key = (queue, sid)
        if outcome.code is FireCode.EARLY:
            if key not in self._held:
                log.error(
                    "schedule %s in queue %s is due after the Redis clock (%d); retrying",
                    sid,
                    queue,
                    outcome.value,
                )
            self._held[key] = mono + RETRY_BROKEN
            return False
        self._held.pop(key, None)
        if outcome.code is FireCode.LATE:  # planned ahead, now too late for it
            log.debug("schedule %s in queue %s: planned too long ago, planning again", sid, queue)
        elif outcome.code is FireCode.DROPPED:
            log.error(
                "schedule %s in queue %s is damaged (%s): taken out of the cron set, the "
                "others go on; remove it or store it again",
                sid,
                queue,
                problem or "unreadable record",
            )
        elif outcome.code is FireCode.FIRED and plan is not None:
            self.fired += outcome.value
            if plan.missed or len(plan.fires) > 1:
                log.info(
                    "schedule %s fired: %d job(s) for %s, %d missed, next %s",
                    sid,
                    outcome.value,
                    ",".join(_iso(f) for f in plan.fires) or "-",
                    plan.missed,
                    "-" if plan.next_ms is None else _iso(plan.next_ms),
                )
        return True
