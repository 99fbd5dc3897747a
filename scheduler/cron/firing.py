"""Firing the due schedules of one queue: window by window, or as planned ahead.

The cron runner (:mod:`scheduler.cron.runner`) decides when; this module
does the firing of one queue at a time for one cron process:

* :meth:`Firer.fire_queue` walks the queue's due list once round from this
  process's place (:mod:`scheduler.cron.share`), window by window: read a
  window of ``per_call`` records in one round trip (leaving out those
  another process fired meanwhile), plan each (:mod:`scheduler.cron.planning`;
  a damaged record becomes a drop) and fire the window with one
  ``cron_fire`` call. Each entry applies only if the schedule's score and
  record are still exactly those read, so of several processes racing for a
  firing exactly one enqueues it. The first schedule found fired by another
  process ends the walk (before it).
* :meth:`Firer.prepare_ahead`, while the runner waits, plans the coming
  firings of this process's arc down to the ``cron_fire`` arguments
  (:mod:`scheduler.cron.ahead`); :meth:`Firer.fire_planned` sends those due
  at the start of the next round, all windows in one round trip, before any
  read.

Outcomes are reported (logged, counted, held back) by
:class:`~scheduler.cron.report.FireReport`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from scheduler.backend import Backend
from scheduler.backend.codes import FireCode
from scheduler.cron.ahead import ReadyFiring, plan_ahead
from scheduler.cron.planning import Planned, plan_now
from scheduler.cron.report import FireReport
from scheduler.cron.share import Share, leading
from scheduler.cron.store import ScheduleStore

__all__ = ["Firer"]


class Firer:
    """Fires due schedules, one queue at a time, for one cron process.

    Args:
        backend: the storage layer.
        store: the app's schedule store (builds and sends the entries).
        share: this process's places in the due lists.
        report: reports the outcomes.
        stop: set when the process stops (walks end between windows).
        batch: most jobs one schedule's plan enqueues (catch-up).
        scan: most due schedules of one queue read per round trip.
        per_call: most schedules in one ``cron_fire`` call.
        call_jobs: a ``cron_fire`` call takes no more schedules once its
            jobs reach this many.
    """

    def __init__(
        self,
        backend: Backend,
        store: ScheduleStore,
        share: Share,
        report: FireReport,
        stop: threading.Event,
        *,
        batch: int,
        scan: int,
        per_call: int,
        call_jobs: int,
    ) -> None:
        self.backend = backend
        self.store = store
        self.share = share
        self.report = report
        self._stop = stop
        self.batch = batch
        self.scan = scan
        self.per_call = per_call
        self.call_jobs = call_jobs
        #: Per queue: the firings of this process's arc planned ahead, in walk order.
        self._ready: dict[str, list[ReadyFiring]] = {}
        #: The last server time read (ms) and the monotonic time then.
        self.clock: tuple[int, float] | None = None

    def prepare_ahead(self, queues: Sequence[str], until_ms: int) -> None:
        """Plan ahead, while there is time to wait, the coming firings of
        the schedules this process expects to fire by ``until_ms`` (ms):
        its arc of each queue (:meth:`Share.arc`), down to the ``cron_fire``
        arguments. Damaged records are skipped here (they are dropped when
        due)."""
        self._ready = {}
        for queue in queues:
            upcoming = self.backend.due_ids(queue, until_ms, self.scan)
            if not upcoming or self._stop.is_set():
                continue
            arc = self.share.arc(queue, upcoming)
            due = self.backend.due_records(queue, arc, current=False)
            self._ready[queue] = plan_ahead(self.store, queue, due, self.batch)

    def fire_planned(self) -> None:
        """At the start of a round, before any read: send the firings planned
        ahead that are due by the server clock as estimated from the last
        reading (it only runs late: the reading was taken before the reply
        came), so a process waking at a fire time sends its work at once.
        What the script finds not yet due (clocks drifting) is looked at
        again by the round."""
        if not self._ready or self.clock is None:
            return
        server_ms, read_at = self.clock
        now = server_ms + int((time.monotonic() - read_at) * 1000)
        for queue in list(self._ready):
            ready = self._ready[queue]
            if not any(r.score <= now for r in ready):
                continue
            del self._ready[queue]
            self.share.add(queue, self._fire_ready(queue, ready, now)[1])

    def fire_queue(self, queue: str, now: int) -> bool:
        """Fire the due schedules of ``queue`` at server time ``now`` (ms),
        window by window; True if anything moved (fired, dropped, or found
        moved by another process).

        What this process planned ahead is sent first (from its home place);
        the rest -- stolen from a random place, or planned again -- the usual
        way. Each window is read in one round trip that also leaves out those
        another process already fired, so concurrent cron processes share
        the work instead of each planning everything; what they still race
        for, ``cron_fire`` applies once (the others get FIRE_STALE, and a
        stale answer always means the stored state changed since it was
        read: no spinning).
        """
        ready = self._ready.pop(queue, None)
        if ready and not self.share.in_burst(queue):
            moved, fired = self._fire_ready(queue, ready, now)
            self.share.add(queue, fired)
            if moved:
                return True
        mono = time.monotonic()
        due = [
            (sid, score)
            for sid, score in self.backend.due_ids(queue, now, self.scan)
            if not self.report.held(queue, sid, mono)
        ]
        if not due:
            return False
        # The first pass of a burst starts at home; later ones (stealing what
        # is left) at a random place.
        walk = self.share.rotate(queue, due, home=not self.share.in_burst(queue))
        moved = fired = 0
        for i in range(0, len(walk), self.per_call):
            if self._stop.is_set():
                break
            chunk = walk[i : i + self.per_call]
            window = self.backend.due_records(queue, chunk)
            collided = len(window) < len(chunk)  # some were fired by another process
            if collided:  # another process works from here on: stop before it
                window = leading(chunk, window)
                moved += 1
            while window:
                planned: list[Planned] = []
                jobs = 0
                while window and jobs < self.call_jobs:
                    planned.append(plan_now(self.store, queue, window.pop(0), now, self.batch))
                    jobs += len(planned[-1][0].jobs)
                reply = self.store.fire(queue, [entry for entry, _, _ in planned])
                for (entry, plan, problem), outcome in zip(planned, reply.outcomes, strict=True):
                    moved += self.report.report(
                        queue, entry.schedule_id, plan, problem, outcome, mono
                    )
                    fired += outcome.code is FireCode.FIRED
            if collided:
                break  # look again: what is left is stolen from a random place
        self.share.add(queue, fired)
        return moved > 0

    def _fire_ready(self, queue: str, ready: list[ReadyFiring], now: int) -> tuple[int, int]:
        """Send the firings planned ahead that are due at ``now`` (ms): all
        windows in one round trip (one ``cron_fire`` call each, run in
        order). Those another process fired first, or that changed, come
        back stale and cost nothing else; what is left of this process's arc
        is then looked at again with fresh reads. Returns (entries that
        moved, jobs fired)."""
        mono = time.monotonic()
        due = [
            r for r in ready if r.score <= now and not self.report.held(queue, r.schedule_id, mono)
        ]
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
                moved += self.report.report(queue, r.schedule_id, r.plan, "", outcome, mono)
                fired += outcome.code is FireCode.FIRED
        return moved, fired
