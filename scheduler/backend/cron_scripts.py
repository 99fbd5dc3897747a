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
from redis.exceptions import NoScriptError

from scheduler.backend.caller import ScriptCaller
from scheduler.backend.codes import FireCode, PauseCode, RemoveCode, UpsertCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.scripts import load_script_text, script_error
from scheduler.errors import ScriptError

__all__ = [
    "CRON_SCRIPT_NAMES",
    "CronScripts",
    "FireEntry",
    "FireJob",
    "FireOutcome",
    "FireReply",
    "UpsertReply",
]

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

    def encode(self) -> tuple[bytes, ...]:
        """The template's five ``cron_fire`` ARGV values (task, payload,
        priority, inputs, options), UTF-8 encoded."""
        return tuple(
            v.encode() for v in (self.task, self.payload, self.priority, self.inputs, self.options)
        )


@attrs.frozen
class UpsertReply:
    """What :meth:`CronScripts.upsert` returns.

    Attributes:
        outcome: ``"created"``, ``"updated"``, ``"unchanged"`` or
            ``"replaced"`` (a damaged record was replaced whole).
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
class FireEntry:
    """One schedule's part of a :meth:`CronScripts.fire` call.

    Attributes:
        schedule_id: the hash field read (never the id a definition names).
        record: the record exactly as read (bytes, or text if the client
            decodes replies); ``""`` if there was no record. The script
            applies the entry only to this very record.
        expected_ms: its cron ZSET score read, ms.
        drop: take it out of the cron set (a damaged record) instead of firing.
        new_next_ms: the new next fire time, ms, or None when none is left.
        missed: due firings not enqueued by this entry.
        job: the job template (None for a drop).
        jobs: the jobs to create, ascending fire times.
        encoded: ``job`` as its five ARGV values, already encoded
            (:meth:`JobTemplate.encode`; a cron process keeps them per
            schedule), or None to encode ``job`` here.
        until_ms: the plan holds while the server clock is before this
            (ms): a plan made ahead of its fire time; at or after it the
            entry is answered :attr:`FireCode.LATE` and nothing is written.
            None: no bound (a plan made with the current server time).
    """

    schedule_id: str
    record: bytes | str
    expected_ms: int
    drop: bool = False
    new_next_ms: int | None = None
    missed: int = 0
    job: JobTemplate | None = None
    jobs: Sequence[FireJob] = ()
    encoded: Sequence[bytes] | None = None
    until_ms: int | None = None

    def args(self) -> list[Any]:
        """This entry's ARGV values (``lua/cron_fire.lua``)."""
        job = self.job
        template: Sequence[Any] = (
            ("", "", "", "", "") if job is None or self.drop else self.encoded or job.encode()
        )
        jobs = () if self.drop else self.jobs
        out: list[Any] = [
            self.schedule_id,
            self.record,
            self.expected_ms,
            "D" if self.drop else "F",
            "" if self.drop else _opt_ms(self.new_next_ms),
            0 if self.drop else self.missed,
            "" if self.drop else _opt_ms(self.until_ms),
            *template,
            len(jobs),
        ]
        for fj in jobs:
            out.extend((fj.job_id, fj.fire_ms, fj.due_ms, fj.meta))
        return out


@attrs.frozen
class FireOutcome:
    """What :meth:`CronScripts.fire` did with one entry.

    Attributes:
        code: :attr:`FireCode.FIRED` (applied), ``STALE`` (another process
            fired it first, or the record changed: nothing written),
            ``EARLY`` (a fire time is after the server clock: nothing
            written), ``DROPPED`` (taken out of the cron set) or ``LATE``
            (the clock reached the entry's ``until_ms``: nothing written).
        value: ``FIRED``: jobs created; ``STALE``: the stored next fire time,
            ms, or -1 if the schedule is not in the cron set; ``EARLY`` and
            ``LATE``: the server time, ms; ``DROPPED``: 0.
    """

    code: FireCode
    value: int


@attrs.frozen
class FireReply:
    """What :meth:`CronScripts.fire` returns.

    Attributes:
        now_ms: the server time the script ran at, ms.
        outcomes: one per entry, in order.
    """

    now_ms: int
    outcomes: list[FireOutcome]


_UPSERT_OUTCOMES = {
    UpsertCode.UNCHANGED: "unchanged",
    UpsertCode.CREATED: "created",
    UpsertCode.UPDATED: "updated",
    UpsertCode.REPLACED: "replaced",
}


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
    _caller: ScriptCaller = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        for name in CRON_SCRIPT_NAMES:
            self._scripts[name] = self.client.register_script(load_script_text(name))
        self._caller = ScriptCaller(self.client)

    def close(self) -> None:
        """Close the connections ``cron_fire`` calls opened."""
        self._caller.close()

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
        actor: str = "",
    ) -> UpsertReply:
        """Create or update a schedule (see ``lua/schedule_upsert.lua``).

        Args:
            next_ms: next fire time (ms) from the server clock, None if none is left.
            paused: create it paused (ignored for an existing schedule).
            channel: pub/sub channel announcing the change.
            actor: who asks (the audit event of a created/changed schedule).
        """
        reply = self._run(
            "schedule_upsert",
            [qk.schedules, qk.cron, qk.events],
            [
                schedule_id,
                digest,
                definition,
                _opt_ms(next_ms),
                "P" if paused else "A",
                channel,
                qk.queue,
                self.events_maxlen,
                actor,
            ],
        )
        if not isinstance(reply, list) or len(reply) != 2:
            raise ScriptError(f"unexpected schedule_upsert reply {reply!r}")
        code = _family_code(reply[0], UpsertCode, "schedule_upsert")
        return UpsertReply(_UPSERT_OUTCOMES[code], _s(reply[1]))

    def pause(
        self,
        qk: QueueKeys,
        schedule_id: str,
        paused: bool,
        next_ms: int | None,
        *,
        channel: str,
        actor: str = "",
    ) -> PauseCode:
        """Pause (``paused=True``) or resume at ``next_ms`` (ms; None = ended).

        Returns: a :class:`PauseCode` (``CHANGED``, ``UNCHANGED`` already in
        that state, ``NO_SCHEDULE``).
        """
        args = [
            schedule_id,
            "1" if paused else "0",
            _opt_ms(next_ms),
            channel,
            qk.queue,
            self.events_maxlen,
            actor,
        ]
        keys = [qk.schedules, qk.cron, qk.events]
        return PauseCode(int(self._run("schedule_pause", keys, args)))

    def remove(
        self, qk: QueueKeys, schedule_id: str, *, channel: str, actor: str = ""
    ) -> RemoveCode:
        """Delete a schedule: :attr:`RemoveCode.REMOVED` or ``NO_SCHEDULE``
        (an audit event naming ``actor`` when removed)."""
        args = [schedule_id, channel, qk.queue, self.events_maxlen, actor]
        keys = [qk.schedules, qk.cron, qk.events]
        return RemoveCode(int(self._run("schedule_remove", keys, args)))

    def fire(self, qk: QueueKeys, entries: Sequence[FireEntry]) -> FireReply:
        """Fire (or drop) a batch of due schedules of one queue, each checked
        and advanced on its own (see ``lua/cron_fire.lua``).

        Args:
            qk: the queue's keys.
            entries: one per schedule, each id at most once.

        Raises:
            ScriptReplyError: bad arguments (nothing written).
            ScriptError: an unexpected reply.
        """
        return self.fire_many(qk, [[entry.args() for entry in entries]])[0]

    def fire_many(self, qk: QueueKeys, calls: Sequence[Sequence[Sequence[Any]]]) -> list[FireReply]:
        """Several :meth:`fire` calls in one round trip (a pipeline without
        MULTI: each call is its own atomic script, run in order), each entry
        given as its ARGV values (:meth:`FireEntry.args`, made ahead by the
        caller). Sent on the lean call path
        (:class:`scheduler.backend.caller.ScriptCaller`), each call as soon
        as it is packed (the server starts on the first while the next is
        packed); after ``NOSCRIPT`` the script is loaded and only the calls
        that got it are sent again. A connection error is raised, not
        retried here (a repeat would be safe: what applied comes back stale).

        Raises:
            ScriptReplyError: bad arguments in a call (nothing written by it).
            ScriptError: an unexpected reply.
            redis.RedisError: a call failed.
        """
        keys = [*qk.extended(), qk.schedules, qk.cron]
        script = self._scripts["cron_fire"]
        replies: list[Any] = [NoScriptError()] * len(calls)
        for attempt in (1, 2):
            todo = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if not todo:
                break
            if attempt == 2:
                self.client.script_load(script.script)
            commands = []
            for i in todo:
                command: list[Any] = ["EVALSHA", script.sha, len(keys), *keys]
                command += [self.events_maxlen, len(calls[i])]
                for entry in calls[i]:
                    command.extend(entry)
                commands.append(command)
            sent = self._caller.call_streamed(commands, window=len(commands))
            for i, reply in zip(todo, sent, strict=True):
                replies[i] = reply
        return [self._fire_reply(r, len(c)) for r, c in zip(replies, calls, strict=True)]

    @staticmethod
    def _fire_reply(reply: Any, entries: int) -> FireReply:
        if isinstance(reply, Exception):
            error = script_error(reply)
            if error is reply:
                raise reply
            raise error from reply
        if not isinstance(reply, list) or len(reply) != 1 + 2 * entries:
            raise ScriptError(f"unexpected cron_fire reply {reply!r}")
        outcomes = [
            FireOutcome(_family_code(code, FireCode, "cron_fire"), int(value))
            for code, value in zip(reply[1::2], reply[2::2], strict=True)
        ]
        return FireReply(int(reply[0]), outcomes)
