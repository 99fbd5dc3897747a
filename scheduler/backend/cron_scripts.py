"""Thin typed wrappers of the schedule Lua scripts (KEYS/ARGV order lives here).

``schedule_upsert``, ``schedule_pause``, ``schedule_remove`` and
``cron_fire`` are files in ``lua/`` loaded with
:func:`scheduler.backend.scripts.load_script_text` and run as redis-py ``Script``
objects (EVALSHA with NOSCRIPT recovery), like the core scripts.

Retries: redis-py may re-send a call after a timeout. Each script is safe
under such a repeat: upsert by digest, pause/resume/remove by state, and
``cron_fire`` by its check-and-advance on the stored next fire time (a
repeat finds it moved and writes nothing) plus job ids derived from the
firing (an existing id is never re-created).

Replies are the named codes of :mod:`scheduler.backend.codes`; a script's
``ERR scheduler: ...`` error reply is raised as
:class:`scheduler.backend.scripts.ScriptReplyError` (a
:class:`scheduler.errors.ScriptError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import redis
from redis.commands.core import Script

from scheduler.backend.codes import FireCode, PauseCode, RemoveCode, UpsertCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.scripts import load_script_text, script_error
from scheduler.errors import ScriptError

__all__ = ["CRON_SCRIPT_NAMES", "CronScripts", "FireJob", "FireReply", "UpsertReply"]

CRON_SCRIPT_NAMES = ("schedule_upsert", "schedule_pause", "schedule_remove", "cron_fire")


def _s(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _opt_ms(value: int | None) -> str:
    return "" if value is None else str(int(value))


@attrs.frozen
class JobTemplate:
    """A schedule's job, encoded as the enqueue script expects it.

    Attributes:
        task: task name.
        payload: ``[args, kwargs]`` JSON text.
        priority: priority as ``repr(float)`` text.
        inputs: ``"weight,time,resource"`` or ``""`` (explicit priority).
        options: encoded :class:`scheduler.backend.record.JobOptions`.
        meta: extra metadata merged into each job's ``meta``, or None.
    """

    task: str
    payload: str
    priority: str
    inputs: str
    options: str
    meta: dict[str, Any] | None = None


@attrs.frozen
class UpsertReply:
    """What :meth:`CronScripts.upsert` returns.

    Attributes:
        outcome: ``"created"``, ``"updated"`` or ``"unchanged"``.
        status: the status letter afterwards: ``A`` active, ``P`` paused, ``E`` ended.
    """

    outcome: str
    status: str


@attrs.frozen
class FireJob:
    """One job of a firing, for :meth:`CronScripts.fire`.

    Attributes:
        job_id: derived job id (``cron:<schedule id>:<fire ms>``).
        fire_ms: fire time, ms since the epoch.
        due_ms: when the job becomes ready (fire time + jitter), ms.
        meta: the job's meta JSON text.
    """

    job_id: str
    fire_ms: int
    due_ms: int
    meta: str


@attrs.frozen
class FireReply:
    """What :meth:`CronScripts.fire` returns.

    Attributes:
        status: ``"fired"`` (applied), ``"stale"`` (another process fired it
            first, or the schedule changed/paused/was removed: nothing
            written) or ``"early"`` (a fire time is after the server clock:
            nothing written).
        created: jobs created (``"fired"`` only).
        value: ``"fired"``/``"early"``: the server time, ms; ``"stale"``: the
            stored next fire time, ms, or -1 if the schedule is not active.
    """

    status: str
    created: int
    value: int


_UPSERT_OUTCOMES = {
    UpsertCode.UNCHANGED: "unchanged",
    UpsertCode.CREATED: "created",
    UpsertCode.UPDATED: "updated",
}
_FIRE_STATUS = {FireCode.STALE: "stale", FireCode.FIRED: "fired", FireCode.EARLY: "early"}


def _family_code(value: Any, family: type[UpsertCode] | type[FireCode], name: str) -> Any:
    try:
        return family(int(value))
    except (TypeError, ValueError):
        raise ScriptError(f"unexpected {name} reply code {value!r}") from None


@attrs.define
class CronScripts:
    """The schedule scripts bound to one redis-py client.

    Attributes:
        client: a ``redis.Redis``.
        events_maxlen: approximate cap of each queue's event stream (0 = off).
    """

    client: redis.Redis
    events_maxlen: int = 10_000
    _scripts: dict[str, Script] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        for name in CRON_SCRIPT_NAMES:
            self._scripts[name] = self.client.register_script(load_script_text(name))

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name``.

        Raises:
            ScriptReplyError: the script refused the call (``ERR scheduler: ...``).
            redis.RedisError: any other failure.
        """
        try:
            return self._scripts[name](keys=keys, args=args)
        except redis.ResponseError as exc:
            error = script_error(exc)
            if error is exc:
                raise
            raise error from exc

    def upsert(
        self,
        qk: QueueKeys,
        schedule_id: str,
        digest: str,
        definition: str,
        next_ms: int | None,
        *,
        paused: bool,
        channel: str,
    ) -> UpsertReply:
        """Create or update a schedule (see ``lua/schedule_upsert.lua``).

        Args:
            next_ms: next fire time (ms) from the server clock, None if none is left.
            paused: create it paused (ignored for an existing schedule).
            channel: pub/sub channel announcing the change.
        """
        reply = self._run(
            "schedule_upsert",
            [qk.schedules, qk.cron],
            [
                schedule_id,
                digest,
                definition,
                _opt_ms(next_ms),
                "P" if paused else "A",
                channel,
                qk.queue,
            ],
        )
        if not isinstance(reply, list) or len(reply) != 2:
            raise ScriptError(f"unexpected schedule_upsert reply {reply!r}")
        code = _family_code(reply[0], UpsertCode, "schedule_upsert")
        return UpsertReply(_UPSERT_OUTCOMES[code], _s(reply[1]))

    def pause(
        self, qk: QueueKeys, schedule_id: str, paused: bool, next_ms: int | None, *, channel: str
    ) -> PauseCode:
        """Pause (``paused=True``) or resume at ``next_ms`` (ms; None = ended).

        Returns: a :class:`PauseCode` (``CHANGED``, ``UNCHANGED`` already in
        that state, ``NO_SCHEDULE``).
        """
        args = [schedule_id, "1" if paused else "0", _opt_ms(next_ms), channel, qk.queue]
        return PauseCode(int(self._run("schedule_pause", [qk.schedules, qk.cron], args)))

    def remove(self, qk: QueueKeys, schedule_id: str, *, channel: str) -> RemoveCode:
        """Delete a schedule: :attr:`RemoveCode.REMOVED` or ``NO_SCHEDULE``."""
        args = [schedule_id, channel, qk.queue]
        return RemoveCode(int(self._run("schedule_remove", [qk.schedules, qk.cron], args)))

    def fire(
        self,
        qk: QueueKeys,
        schedule_id: str,
        digest: str,
        expected_next_ms: int,
        new_next_ms: int | None,
        missed: int,
        job: JobTemplate,
        jobs: Sequence[FireJob],
    ) -> FireReply:
        """Enqueue a firing plan and advance the schedule, if it has not moved.

        Args:
            expected_next_ms: the next fire time the plan was computed from, ms.
            new_next_ms: the schedule's new next fire time, ms, or None if it ends.
            missed: due firings not enqueued by this call.
            job: the job template of the schedule's definition ``digest``.
            jobs: the jobs to create, ascending fire times.
        """
        args: list[Any] = [
            self.events_maxlen,
            schedule_id,
            digest,
            expected_next_ms,
            _opt_ms(new_next_ms),
            missed,
            job.task,
            job.payload,
            job.priority,
            job.inputs,
            job.options,
            len(jobs),
        ]
        for fj in jobs:
            args.extend((fj.job_id, fj.fire_ms, fj.due_ms, fj.meta))
        reply = self._run("cron_fire", [*qk.extended(), qk.schedules, qk.cron], args)
        if not isinstance(reply, list) or len(reply) < 2:
            raise ScriptError(f"unexpected cron_fire reply {reply!r}")
        code = _family_code(reply[0], FireCode, "cron_fire")
        status = _FIRE_STATUS[code]
        if code is FireCode.FIRED:
            return FireReply(status, int(reply[1]), int(reply[2]))
        return FireReply(status, 0, int(float(_s(reply[1]))))
