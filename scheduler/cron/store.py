"""The schedules of one app: declared in code, stored in Redis, controlled.

:class:`ScheduleStore` is what :attr:`scheduler.Scheduler.schedules` returns.
Schedules declared with ``app.cron(...)`` / ``app.every(...)`` are kept in
:attr:`ScheduleStore.declared` (no Redis I/O at import time) and upserted by
:meth:`ScheduleStore.sync` when a cron process starts. :meth:`ScheduleStore.add`
writes one at once (run-time schedules; they persist in Redis).

Every write is one Lua script; reads (:meth:`get`, :meth:`list`) are plain
HGET/ZSCORE calls. Next fire times are computed here from the Redis server
clock (``TIME``), never from the local clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scheduler.backend import Backend
from scheduler.backend.codes import PauseCode, RemoveCode
from scheduler.backend.cron_scripts import FireEntry, FireJob, FireReply, UpsertReply
from scheduler.building import JobBuilder
from scheduler.cron.declare import build_schedule
from scheduler.cron.errors import (
    DamagedScheduleError,
    InvalidScheduleError,
    ScheduleNotFoundError,
)
from scheduler.cron.schedule import Schedule
from scheduler.cron.state import ScheduleInfo
from scheduler.task import Task
from scheduler.validation import resolve_actor, validate_queue_name, validate_schedule_id

if TYPE_CHECKING:
    from datetime import timedelta

    from scheduler.cron.policy import FirePlan

__all__ = ["ScheduleStore"]

log = logging.getLogger("scheduler.cron")


class ScheduleStore:
    """Cron and interval schedules of one :class:`scheduler.Scheduler`.

    Args:
        backend: the storage layer.
        builder: builds the schedules' jobs (the app's task registry and
            defaults), exactly as an enqueue would.
    """

    def __init__(self, backend: Backend, builder: JobBuilder) -> None:
        self.backend = backend
        self.builder = builder
        self.scripts = backend.cron_scripts
        self.channel = backend.keys.schedules_channel
        self._declared: dict[tuple[str, str], Schedule] = {}
        self._lock = threading.Lock()

    # -- declaration ----------------------------------------------------------

    def build(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: float | timedelta | None = None,
        **options: Any,
    ) -> Schedule:
        """Validate and return a schedule without declaring or storing it.

        See :func:`scheduler.cron.declare.build_schedule` for the arguments.
        """
        return build_schedule(self.builder, task, args, kwargs, cron=cron, every=every, **options)

    def declare(self, schedule: Schedule) -> Schedule:
        """Add ``schedule`` to the schedules this code declares (upserted by :meth:`sync`).

        Raises:
            InvalidScheduleError: another, different schedule with this id
                and queue is already declared.
        """
        key = (schedule.queue, schedule.id)
        with self._lock:
            existing = self._declared.get(key)
            if existing is not None and existing.digest != schedule.digest:
                raise InvalidScheduleError(
                    f"schedule {schedule.id!r} in queue {schedule.queue!r} is already "
                    "declared differently; give each schedule its own id="
                )
            self._declared[key] = schedule
        return schedule

    @property
    def declared(self) -> list[Schedule]:
        """Schedules declared in code on this app, in declaration order."""
        with self._lock:
            return list(self._declared.values())

    # -- writes -------------------------------------------------------------

    def add(self, schedule: Schedule, *, actor: str | None = None) -> UpsertReply:
        """Store ``schedule`` now: create it, or update its definition if it changed.

        An unchanged definition is left as it is (next fire time, pause state
        and history kept). A changed one restarts from the next fire time
        after now and keeps its pause state and history. A damaged record
        under this id is replaced whole (``"replaced"``, history lost).

        ``actor`` (default ``$SCHEDULER_ACTOR`` or ``user@host``) is named in
        the audit event of a created or changed schedule.

        Returns:
            ``outcome`` ``"created"``/``"updated"``/``"unchanged"``/``"replaced"``
            and the status.
        """
        who = resolve_actor(actor)
        self.backend.register_queue(schedule.queue)
        now = self.backend.server_time_ms()
        reply = self.scripts.upsert(
            self.backend.queue(schedule.queue),
            schedule.id,
            schedule.digest,
            schedule.to_json(),
            schedule.next_fire(now),
            paused=schedule.paused,
            channel=self.channel,
            actor=who,
        )
        if reply.outcome == "replaced":
            log.warning(
                "schedule %s in queue %s was damaged: replaced by %s",
                schedule.id,
                schedule.queue,
                schedule.describe(),
            )
        elif reply.outcome != "unchanged":
            log.info("schedule %s (%s) %s", schedule.id, schedule.describe(), reply.outcome)
        return reply

    def sync(self) -> dict[str, int]:
        """Upsert every declared schedule; returns how many were created/updated/unchanged.

        Safe to run from any number of processes at once: equal definitions
        are no-ops, and two code versions declaring the same id update one
        schedule (the last writer's definition wins) -- never a duplicate.
        Schedules in Redis that the code no longer declares are left alone
        (they may have been added at run time): remove them explicitly.
        """
        counts = {"created": 0, "updated": 0, "unchanged": 0, "replaced": 0}
        for schedule in self.declared:
            counts[self.add(schedule).outcome] += 1
        return counts

    def _find_queue(self, schedule_id: str, queue: str | None) -> str:
        validate_schedule_id(schedule_id)
        if queue is not None:
            return validate_queue_name(queue)
        found = self.backend.schedule_queue(schedule_id)
        if found is not None:
            return found
        raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")

    def pause(
        self, schedule_id: str, queue: str | None = None, *, actor: str | None = None
    ) -> bool:
        """Pause a schedule: nothing fires until :meth:`resume`.

        Args:
            schedule_id: the schedule id.
            queue: its queue; None searches every registered queue.
            actor: who asks, named in the audit event (default
                ``$SCHEDULER_ACTOR`` or ``user@host``; the same for
                :meth:`resume` and :meth:`remove`).

        Returns:
            True if it was paused now, False if it already was.

        Raises:
            ScheduleNotFoundError: no such schedule.
            DamagedScheduleError: its record is damaged (nothing written).
        """
        who = resolve_actor(actor)
        q = self.get(schedule_id, queue).queue  # damaged: refused before any write
        return self._set_paused(schedule_id, q, True, None, who)

    def resume(
        self, schedule_id: str, queue: str | None = None, *, actor: str | None = None
    ) -> bool:
        """Resume a paused schedule at its next fire time after now (firings
        due while it was paused are not run).

        Returns:
            True if it was resumed now, False if it was not paused.

        Raises:
            ScheduleNotFoundError: no such schedule.
            DamagedScheduleError: its record is damaged (nothing written).
        """
        who = resolve_actor(actor)
        info = self.get(schedule_id, queue)
        next_ms = info.schedule.next_fire(self.backend.server_time_ms())
        return self._set_paused(schedule_id, info.queue, False, next_ms, who)

    def _set_paused(
        self, schedule_id: str, queue: str, paused: bool, next_ms: int | None, actor: str
    ) -> bool:
        """Pause or resume (at ``next_ms``, ms) a schedule found in ``queue``;
        True if its state changed.

        Raises:
            ScheduleNotFoundError: it was removed meanwhile.
        """
        code = self.scripts.pause(
            self.backend.queue(queue),
            schedule_id,
            paused,
            next_ms,
            channel=self.channel,
            actor=actor,
        )
        if code is PauseCode.NO_SCHEDULE:
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r} in queue {queue!r}")
        return code is PauseCode.CHANGED

    def remove(
        self, schedule_id: str, queue: str | None = None, *, actor: str | None = None
    ) -> bool:
        """Delete a schedule (jobs already enqueued stay), damaged or not:
        the record is never decoded. A schedule still declared in code comes
        back at the next :meth:`sync`.

        Returns:
            True if it existed.
        """
        who = resolve_actor(actor)
        try:
            q = self._find_queue(schedule_id, queue)
        except ScheduleNotFoundError:
            return False
        code = self.scripts.remove(
            self.backend.queue(q), schedule_id, channel=self.channel, actor=who
        )
        return code is RemoveCode.REMOVED

    # -- reads --------------------------------------------------------------

    def get(self, schedule_id: str, queue: str | None = None) -> ScheduleInfo:
        """A schedule with its next fire time, last fire time and last job id.

        Raises:
            ScheduleNotFoundError: no such schedule.
            DamagedScheduleError: its record is damaged.
        """
        q = self._find_queue(schedule_id, queue)
        raw, score = self.backend.read_schedule(q, schedule_id)
        if raw is None:
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r} in queue {q!r}")
        return ScheduleInfo.decode(q, schedule_id, raw, score)

    def scan(
        self, queue: str | None = None
    ) -> tuple[list[ScheduleInfo], list[DamagedScheduleError]]:
        """Every stored schedule (of ``queue``, or of all registered queues),
        sorted by queue and id: the readable ones, and one error per damaged
        record (each names its id, queue and what is wrong)."""
        queues = [validate_queue_name(queue)] if queue is not None else self.backend.queue_names()
        result: list[ScheduleInfo] = []
        damaged: list[DamagedScheduleError] = []
        for q in queues:
            for sid, raw, score in self.backend.read_schedules(q):
                try:
                    result.append(ScheduleInfo.decode(q, sid, raw, score))
                except DamagedScheduleError as exc:
                    damaged.append(exc)
        return result, damaged

    def list(self, queue: str | None = None) -> list[ScheduleInfo]:
        """Every stored schedule (of ``queue``, or of all registered queues),
        sorted by queue and id. Damaged records are logged and left out
        (:meth:`scan` returns them)."""
        result, damaged = self.scan(queue)
        for exc in damaged:
            log.warning("%s", exc)
        return result

    # -- firing (used by the cron runner) -------------------------------------

    def entry(
        self,
        schedule: Schedule,
        record: bytes | str,
        expected_next_ms: int,
        plan: FirePlan,
        until_ms: int | None = None,
    ) -> FireEntry:
        """The ``cron_fire`` entry applying ``plan`` (see :class:`FireEntry`).

        Args:
            schedule: the stored definition the plan was computed from (its
                id is the hash field read, checked by :func:`decode_record`).
            record: the record exactly as read.
            expected_next_ms: the stored next fire time the plan started from, ms.
            plan: from :meth:`Schedule.plan` (or :meth:`Schedule.plan_ahead`).
            until_ms: the plan holds while the server clock is before this,
                ms (from :meth:`Schedule.plan_ahead`); None: no bound.
        """
        jobs = [
            FireJob(
                job_id=schedule.job_id(fire),
                fire_ms=fire,
                due_ms=schedule.due_ms(fire),
                meta=schedule.job_meta(fire, plan.missed if i == 0 else 0),
            )
            for i, fire in enumerate(plan.fires)
        ]
        return FireEntry(
            schedule_id=schedule.id,
            record=record,
            expected_ms=expected_next_ms,
            new_next_ms=plan.next_ms,
            missed=plan.missed,
            job=schedule.job,
            encoded=schedule.encoded_job,
            jobs=jobs,
            until_ms=until_ms,
        )

    def fire(self, queue: str, entries: Sequence[FireEntry]) -> FireReply:
        """Apply firing (and drop) entries of one queue with one ``cron_fire`` call."""
        return self.scripts.fire(self.backend.queue(queue), entries)

    def fire_many(
        self, queue: str, calls: Sequence[Sequence[Sequence[Any]]]
    ) -> Sequence[FireReply]:
        """Several :meth:`fire` calls in one round trip, each entry given as
        its ARGV values (:meth:`FireEntry.args`, made ahead while the cron
        process waits); see :meth:`CronScripts.fire_many`."""
        return self.scripts.fire_many(self.backend.queue(queue), calls)
