"""Loading the Lua scripts, and one thin typed wrapper per script.

The scripts are files in the repository's top-level ``lua/`` directory,
loaded by :mod:`scheduler.backend.lualoader` (includes expanded, unused library
definitions pruned), so shared code (record codec, transitions) exists once.

Scripts run through redis-py :class:`~redis.commands.core.Script` objects:
EVALSHA, falling back to SCRIPT LOAD on ``NOSCRIPT`` (e.g. after a Redis
restart). Each wrapper below is the single place where one script's KEYS and
ARGV order is written down on the Python side.

Retries: redis-py re-sends a command after a timeout or connection error
(10 times by default in redis-py 8). Every script here is idempotent under
such a repeat -- enqueue by job id, lease by request id (reply cache),
start/complete/fail/release/heartbeat by lease token, the rest by state checks --
so a repeat never has a double effect, and answers with the outcome it
already applied (tested in ``tests/test_idempotency.py``).

Replies: the wrappers return the named codes of :mod:`scheduler.backend.codes`
(``IntEnum`` members, one enum per script). A script's own error reply
(``ERR scheduler: ...``: bad arguments, a damaged schedule record) is raised
as :class:`ScriptReplyError`, a :class:`scheduler.errors.ScriptError` carrying
the script's message (it is also a ``redis.ResponseError``, what callers saw
before); other Redis errors are raised as redis-py raised them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import attrs
import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from scheduler import defaults
from scheduler.backend.caller import ScriptCaller
from scheduler.backend.codes import (
    CancelCode,
    CompleteCode,
    ConfigCode,
    EnqueueCode,
    FailCode,
    HeartbeatCode,
    ProgressCode,
    ReleaseCode,
    ReprioritizeCode,
    RetryCode,
    RunNowCode,
    StartCode,
)
from scheduler.backend.keys import QueueKeys
from scheduler.backend.lualoader import load_script_text
from scheduler.errors import ScriptError

__all__ = [
    "SCRIPT_NAMES",
    "EnqueueItem",
    "LeaseFit",
    "LeaseReply",
    "ScriptCall",
    "ScriptReplyError",
    "Scripts",
    "load_script_text",
]

T = TypeVar("T")
E = TypeVar("E", bound=enum.IntEnum)

SCRIPT_NAMES = (
    "enqueue",
    "enqueue_one",
    "lease",
    "start",
    "heartbeat",
    "complete",
    "fail",
    "release",
    "cancel",
    "retry",
    "reprioritize",
    "run_now",
    "queue_config",
    "purge",
    "queue_limit",
    "progress",
)


def _s(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _ints(reply: Any, expected: int) -> list[int]:
    if not isinstance(reply, list) or len(reply) != expected:
        raise ScriptError(f"unexpected script reply {reply!r}")
    return [int(x) for x in reply]


class ScriptReplyError(ScriptError, redis.ResponseError):
    """A script refused its call with an ``ERR scheduler: ...`` error reply
    (bad arguments, a damaged schedule record). ``str()`` is the script's
    message, e.g. ``"scheduler: bad argument count"``. Nothing was written
    by the call (scripts check before they write)."""


def script_error(exc: Exception) -> Exception:
    """``exc`` as :class:`ScriptReplyError` if it is a script's own
    ``ERR scheduler: ...`` reply, else ``exc`` unchanged."""
    if isinstance(exc, redis.ResponseError) and not isinstance(exc, ScriptError):
        message = str(exc)
        at = message.find("scheduler: ")
        if at >= 0:
            return ScriptReplyError(message[at:])
    return exc


def _raise_errors(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            error = script_error(reply)
            if error is reply:
                raise reply
            raise error from reply


def _code_table(family: type[E]) -> dict[int, E]:
    return {int(member): member for member in family}


_CREATED = int(EnqueueCode.CREATED)  # a plain int: compared once per enqueued job
_COMPLETE = _code_table(CompleteCode)
_FAIL = _code_table(FailCode)
_RELEASE = _code_table(ReleaseCode)
_HEARTBEAT = _code_table(HeartbeatCode)
_START = _code_table(StartCode)
_RETRY = _code_table(RetryCode)


def _codes(reply: Any, expected: int, table: dict[int, E]) -> list[E]:
    """A per-job reply as members of one code family (a dict lookup per job:
    cheaper than calling the enum)."""
    if not isinstance(reply, list) or len(reply) != expected:
        raise ScriptError(f"unexpected script reply {reply!r}")
    try:
        return [table[int(x)] for x in reply]
    except KeyError:
        raise ScriptError(f"unexpected script reply {reply!r}") from None


def _code(reply: Any, family: type[E]) -> E:
    try:
        return family(int(reply))
    except (TypeError, ValueError):
        raise ScriptError(f"unexpected script reply {reply!r}") from None


#: Commas in the inputs of a job with a learned run time ("w,t,r,alpha,min_samples").
_LEARNED_COMMAS = 4


def _one_created(reply: Any) -> list[bool]:
    return [c == _CREATED for c in _ints(reply, 1)]


class EnqueueItem(NamedTuple):
    """One job for :meth:`Scripts.enqueue` (already validated and encoded).

    A named tuple (cheap to build: bulk enqueue makes one per job).

    Attributes:
        job_id: job id.
        task: task name.
        payload: ``[args, kwargs]`` JSON text.
        priority: priority as exact decimal text (``compact_float``).
        inputs: ``"weight,time,resource"`` or ``""``.
        options: encoded :class:`scheduler.backend.record.JobOptions`.
        eta_ms: absolute ETA in ms since the Unix epoch, or None.
        delay_ms: delay in ms from the server's clock, or None.
        meta: JSON object text of caller metadata, or "".
    """

    job_id: str
    task: str
    payload: str
    priority: str
    inputs: str
    options: str
    eta_ms: int | None = None
    delay_ms: int | None = None
    meta: str = ""

    def argv(self) -> tuple[str, ...]:
        """The item's 9 ARGV values of ``enqueue.lua``."""
        return (
            self.job_id,
            self.task,
            self.payload,
            self.priority,
            self.inputs,
            self.options,
            "" if self.eta_ms is None else str(self.eta_ms),
            "" if self.delay_ms is None else str(self.delay_ms),
            self.meta,
        )


@attrs.frozen
class LeaseReply:
    """What :meth:`Scripts.lease` returns.

    Attributes:
        wake_ms: ms until the next ETA or lease deadline in this queue; 0 if
            more is already due; -1 if nothing is pending.
        paused: the queue is paused (nothing was leased).
        jobs: ``(job_id, record_text)`` of each leased job, best first.
        aging: the queue's current aging rate (priority units per second;
            informational: a job's ready score comes from its record's
            aging stamp, :func:`scheduler.priority.ready_score`).
    """

    wake_ms: int
    paused: bool
    jobs: list[tuple[str, str]]
    aging: float = 0.0


@attrs.frozen
class LeaseFit:
    """A worker's capacity for one lease call (``lua/lease.lua`` ARGV[8..10]).

    Attributes:
        capacity: the worker's capacity, resource units (finite, > 0).
        free: the part not taken by jobs it holds (finite, >= 0).
        backfill_wait_ms: how long a job that fits ``capacity`` but not
            ``free`` may be passed by smaller jobs behind it, ms since it
            became ready (0 = strict, -1 = unbounded backfill).
    """

    capacity: float
    free: float
    backfill_wait_ms: int = 0

    def argv(self) -> list[Any]:
        """ARGV[8..10] of ``lua/lease.lua``."""
        return [repr(float(self.capacity)), repr(max(0.0, float(self.free))), self.backfill_wait_ms]


#: ARGV[8..10] of a lease without a capacity (unlimited).
_NO_FIT: list[Any] = ["", "0", 0]


@attrs.frozen
class ScriptCall(Generic[T]):
    """One prepared script call: name, KEYS, ARGV and the reply parser."""

    name: str
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], T]


def _recording(
    calls: Iterable[ScriptCall[T]], into: list[ScriptCall[T]]
) -> Iterator[ScriptCall[T]]:
    for call in calls:
        into.append(call)
        yield call


def _identity(reply: Any) -> Any:
    return reply


def _lease_reply(reply: Any) -> LeaseReply:
    if not isinstance(reply, list) or len(reply) < 3 or not len(reply) % 2:
        raise ScriptError(f"unexpected lease reply {reply!r}")
    # Once per job and field: the bytes decode inline, not through _s.
    flat = [v.decode("utf-8", "replace") if type(v) is bytes else str(v) for v in reply[3:]]
    jobs = list(zip(flat[::2], flat[1::2], strict=True))
    return LeaseReply(
        wake_ms=int(reply[0]), paused=int(reply[1]) == 1, jobs=jobs, aging=float(_s(reply[2]))
    )


@attrs.define
class Scripts:
    """The scheduler's Lua scripts bound to one redis-py client.

    Attributes:
        client: a ``redis.Redis`` (bytes or decoded responses both work).
        events_maxlen: approximate cap of each queue's event stream; 0 turns
            events off.
        promote_batch: max delayed jobs promoted per lease call.
        reap_batch: max expired leases requeued per lease call.
        expire_batch: expired finished/dead records deleted per set and
            call (complete: at least twice its jobs; lib/expiry.lua).
        lease_cache_ms: lifetime of a lease request's reply cache, ms.
        lease_scan: most ready entries a lease call looks at when limits or
            a worker capacity apply.
    """

    client: redis.Redis
    events_maxlen: int = 10_000
    promote_batch: int = 200
    reap_batch: int = 100
    expire_batch: int = defaults.EXPIRE_BATCH
    lease_cache_ms: int = 60_000
    lease_scan: int = defaults.LEASE_SCAN
    _scripts: dict[str, Script] = attrs.field(init=False, factory=dict)
    _caller: ScriptCaller = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        for name in SCRIPT_NAMES:
            self._scripts[name] = self.client.register_script(load_script_text(name))
        self._caller = ScriptCaller(self.client)

    def close(self) -> None:
        """Close the connections script calls opened."""
        self._caller.close()

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self.run_many([ScriptCall(name, keys, args, _identity)])[0]

    def run_many(self, calls: Sequence[ScriptCall[Any]]) -> list[Any]:
        """Run several script calls in one round trip (a pipeline without
        MULTI: each call stays its own atomic script) and return their parsed
        replies in order.

        Calls go through :class:`scheduler.backend.caller.ScriptCaller` (EVALSHA on a
        per-thread connection; no SCRIPT EXISTS per call). On ``NOSCRIPT``
        (e.g. after a Redis restart) the scripts are loaded and the whole
        batch is sent again -- safe, because every script is idempotent under
        a repeat. All calls should target keys of one queue (one slot) so the
        batch also works on Redis Cluster.

        Raises:
            ScriptReplyError: a script refused its call (``ERR scheduler: ...``).
            redis.RedisError: a call failed (the first error is raised).
        """
        for attempt in (1, 2):
            commands = [
                ("EVALSHA", self._scripts[c.name].sha, len(c.keys), *c.keys, *c.args) for c in calls
            ]
            replies = self._caller.call_many(commands)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
                for call in calls:
                    script = self._scripts[call.name]
                    script.sha = self.client.script_load(script.script)
                continue
            _raise_errors(replies)
            return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]
        raise ScriptError("scripts could not be loaded")  # pragma: no cover

    def write(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send plain write commands (not scripts) on the script call path, so
        they get its retries through a failover or slot migration
        (:mod:`scheduler.backend.caller`; a plain ``redis.Redis`` call
        would fail with ``NOREPLICAS`` just after a Sentinel failover).
        Every command must be safe to repeat (e.g. ``SADD``, ``HSET``).

        Raises:
            redis.RedisError: a command failed (the first error is raised).
        """
        replies = self._caller.call_many(commands)
        _raise_errors(replies)
        return replies

    def command(self, call: ScriptCall[Any]) -> tuple[Any, ...]:
        """The EVALSHA command of ``call``, for sending it on another connection."""
        return ("EVALSHA", self._scripts[call.name].sha, len(call.keys), *call.keys, *call.args)

    def text(self, name: str) -> str:
        """The Lua text of script ``name`` (for loading it on another client)."""
        return str(self._scripts[name].script)

    def _do(self, call: ScriptCall[T]) -> T:
        return call.parse(self._run(call.name, call.keys, call.args))

    def enqueue_call(self, qk: QueueKeys, items: Sequence[EnqueueItem]) -> ScriptCall[list[bool]]:
        """The :meth:`enqueue` call, for :meth:`run_many` / :meth:`run_streamed`.

        One job that does not learn its run time goes to ``enqueue_one.lua``
        (the same job, fewer commands; ``docs/benchmarks.md``, "Issue 16");
        anything else to ``enqueue.lua``.
        """
        if len(items) == 1 and items[0].inputs.count(",") != _LEARNED_COMMAS:
            args1 = [self.events_maxlen, 1, *items[0].argv()]
            return ScriptCall("enqueue_one", qk.standard(), args1, _one_created)
        args: list[Any] = [self.events_maxlen, len(items)]
        for item in items:
            args.extend(item.argv())
        n = len(items)
        return ScriptCall(
            "enqueue", qk.extended(), args, lambda r: [c == _CREATED for c in _ints(r, n)]
        )

    def enqueue(self, qk: QueueKeys, items: Sequence[EnqueueItem]) -> list[bool]:
        """Create jobs; returns per job True if created (:attr:`EnqueueCode.CREATED`),
        False if the id existed."""
        result: list[bool] = self.run_many([self.enqueue_call(qk, items)])[0]
        return result

    def run_streamed(self, calls: Iterable[ScriptCall[Any]]) -> list[Any]:
        """Like :meth:`run_many`, but each call is sent as soon as the iterator
        yields it, with up to two replies outstanding: building the next call
        (e.g. the next bulk-enqueue batch) overlaps with Redis running the
        previous one. On an error the calls are sent again as a batch (every
        script is idempotent under a repeat).

        Raises:
            ScriptReplyError: a script refused its call (``ERR scheduler: ...``).
            redis.RedisError: a call failed.
        """
        done: list[ScriptCall[Any]] = []
        try:
            replies = self._caller.call_streamed(
                (self.command(c) for c in _recording(calls, done)), window=2
            )
        except (redis.ConnectionError, redis.TimeoutError):
            return self.run_many(done + list(calls))
        if any(isinstance(r, NoScriptError) for r in replies):
            return self.run_many(done)
        _raise_errors(replies)
        return [call.parse(reply) for call, reply in zip(done, replies, strict=True)]

    def lease_call(
        self,
        qk: QueueKeys,
        n: int,
        worker_id: str,
        request_id: str,
        fit: LeaseFit | None = None,
    ) -> ScriptCall[LeaseReply]:
        """The :meth:`lease` call, for :meth:`run_many`."""
        return ScriptCall(
            "lease",
            qk.lease_keys(),
            [
                self.events_maxlen,
                n,
                worker_id,
                self.lease_cache_ms,
                self.promote_batch,
                self.reap_batch,
                self.expire_batch,
                *(_NO_FIT if fit is None else fit.argv()),
                self.lease_scan,
                request_id,
            ],
            _lease_reply,
        )

    def lease(
        self,
        qk: QueueKeys,
        n: int,
        worker_id: str,
        request_id: str,
        fit: LeaseFit | None = None,
    ) -> LeaseReply:
        """Lease up to ``n`` jobs for ``worker_id``; ``request_id`` makes it
        idempotent; ``fit``: the worker's capacity (None: unlimited). The
        queue's concurrency and rate limits apply (``lua/lease.lua``)."""
        return self._do(self.lease_call(qk, n, worker_id, request_id, fit))

    def start_call(
        self, qk: QueueKeys, leases: Sequence[tuple[str, str]]
    ) -> ScriptCall[list[StartCode]]:
        """The :meth:`start` call, for :meth:`run_many`."""
        args: list[Any] = [len(leases)]
        for job_id, token in leases:
            args.extend((job_id, token))
        n = len(leases)
        return ScriptCall("start", qk.standard(), args, lambda r: _codes(r, n, _START))

    def start(self, qk: QueueKeys, leases: Sequence[tuple[str, str]]) -> list[StartCode]:
        """Record that the worker began running leases ``(job_id, token)``
        (an attempt counts an execution that started; see ``lua/start.lua``);
        a :class:`StartCode` per job."""
        return self._do(self.start_call(qk, leases))

    def heartbeat(self, qk: QueueKeys, leases: Sequence[tuple[str, str]]) -> list[int]:
        """Extend leases ``(job_id, token)``.

        Returns per job: the new deadline (ms since the epoch, > 1) if
        extended, else a :class:`HeartbeatCode` (``REPORTED`` already reported
        under this lease, ``LOST``, ``GONE``).
        """
        args: list[Any] = [len(leases)]
        for job_id, token in leases:
            args.extend((job_id, token))
        reply = _ints(self._run("heartbeat", qk.standard(), args), len(leases))
        return [_HEARTBEAT.get(x, x) if x <= 1 else x for x in reply]

    def progress(
        self, qk: QueueKeys, job_id: str, token: str, text: str, ttl_ms: int
    ) -> ProgressCode:
        """Store a leased job's progress ``text`` (JSON), fenced by ``token``;
        the progress hash expires ``ttl_ms`` after this write (``lua/progress.lua``)."""
        keys = [*qk.extended(), qk.progress]
        reply = self._run("progress", keys, [self.events_maxlen, job_id, token, text, ttl_ms])
        return _code(reply, ProgressCode)

    def complete_call(
        self,
        qk: QueueKeys,
        items: Sequence[tuple[str, str, str]],
        starts: Sequence[tuple[str, str]] = (),
    ) -> ScriptCall[list[CompleteCode]]:
        """The :meth:`complete` call, for :meth:`run_many`; ``starts``
        (``(job_id, token)`` of leases started since the last round trip) are
        stamped first in the same call, as :meth:`start` would (their codes
        are not returned; see ``lua/complete.lua``)."""
        args: list[Any] = [self.events_maxlen, self.expire_batch, len(items)]
        for item in items:
            args.extend(item)
        if starts:
            args.append(len(starts))
            for lease in starts:
                args.extend(lease)
        n = len(items)
        return ScriptCall("complete", qk.extended(), args, lambda r: _codes(r, n, _COMPLETE))

    def complete(self, qk: QueueKeys, items: Sequence[tuple[str, str, str]]) -> list[CompleteCode]:
        """Record successes ``(job_id, token, result_json)``; a :class:`CompleteCode` per job."""
        return self._do(self.complete_call(qk, items))

    def fail_call(
        self, qk: QueueKeys, items: Sequence[tuple[str, str, str, int]]
    ) -> ScriptCall[list[FailCode]]:
        """The :meth:`fail` call, for :meth:`run_many`."""
        args: list[Any] = [self.events_maxlen, len(items)]
        for item in items:
            args.extend(item)
        n = len(items)
        return ScriptCall("fail", qk.standard(), args, lambda r: _codes(r, n, _FAIL))

    def fail(self, qk: QueueKeys, items: Sequence[tuple[str, str, str, int]]) -> list[FailCode]:
        """Record failures ``(job_id, token, error_json, retry_delay_ms or -1)``;
        a :class:`FailCode` per job."""
        return self._do(self.fail_call(qk, items))

    def release(self, qk: QueueKeys, leases: Sequence[tuple[str, str]]) -> list[ReleaseCode]:
        """Release leases ``(job_id, token)``; a :class:`ReleaseCode` per job."""
        args: list[Any] = [self.events_maxlen, len(leases)]
        for job_id, token in leases:
            args.extend((job_id, token))
        return _codes(self._run("release", qk.standard(), args), len(leases), _RELEASE)

    def cancel(
        self, qk: QueueKeys, job_id: str, reason_json: str, *, actor: str = ""
    ) -> CancelCode:
        """Cancel a job (see :class:`CancelCode`); ``actor`` goes in the audit event."""
        args = [self.events_maxlen, job_id, reason_json, actor]
        return _code(self._run("cancel", qk.standard(), args), CancelCode)

    def retry(self, qk: QueueKeys, job_ids: Sequence[str], *, actor: str = "") -> list[RetryCode]:
        """Requeue finished/failed jobs; a :class:`RetryCode` per job. One audit
        event (action ``retry``, ``actor``) names the jobs requeued."""
        args: list[Any] = [self.events_maxlen, actor, len(job_ids), *job_ids]
        return _codes(self._run("retry", qk.standard(), args), len(job_ids), _RETRY)

    def reprioritize(
        self, qk: QueueKeys, job_id: str, priority: str, inputs: str, *, actor: str = ""
    ) -> ReprioritizeCode:
        """Set a waiting job's priority (see :class:`ReprioritizeCode`)."""
        args = [self.events_maxlen, job_id, priority, inputs, actor]
        return _code(self._run("reprioritize", qk.standard(), args), ReprioritizeCode)

    def run_now(self, qk: QueueKeys, job_id: str, *, actor: str = "") -> RunNowCode:
        """Promote a delayed job now (see :class:`RunNowCode`)."""
        args = [self.events_maxlen, job_id, actor]
        return _code(self._run("run_now", qk.standard(), args), RunNowCode)

    def queue_config(self, qk: QueueKeys, name: str, value: str, *, actor: str = "") -> str:
        """Set queue setting ``paused`` ("0"/"1") or ``aging`` (a rate as
        ``repr(float)`` text); returns the old value ("0" when unset). A
        change writes an audit event naming ``actor``.

        An aging change first promotes the queue's due delayed jobs (so each
        is stamped with the aging in force at its ETA): while more than
        ``promote_batch`` are due, each script call promotes that many and
        :meth:`queue_config_step` answers :attr:`ConfigCode.PROMOTING`; this
        repeats the bounded call until the change is made.
        """
        while True:
            code, old = self.queue_config_step(qk, name, value, actor=actor)
            if code == ConfigCode.SET:
                return old

    def queue_config_step(
        self, qk: QueueKeys, name: str, value: str, *, actor: str = ""
    ) -> tuple[ConfigCode, str]:
        """One ``queue_config.lua`` call: ``(code, old value)`` (see :meth:`queue_config`)."""
        args = [name, value, self.events_maxlen, self.promote_batch, actor]
        reply = self._run("queue_config", qk.standard(), args)
        if not isinstance(reply, list) or len(reply) != 2:
            raise ScriptError(f"unexpected script reply {reply!r}")
        return _code(reply[0], ConfigCode), _s(reply[1])

    def purge(self, qk: QueueKeys, which: str, limit: int = 500, *, actor: str = "") -> int:
        """Delete up to ``limit`` jobs of set ``which``; returns how many were
        deleted (an audit event naming ``actor`` when > 0)."""
        args = [which, limit, self.events_maxlen, actor]
        return int(self._run("purge", qk.standard(), args))

    def queue_limit(
        self, qk: QueueKeys, scope: str, concurrency: str, rate: str, *, actor: str = ""
    ) -> tuple[str, str]:
        """Set or remove a limit of the queue (``scope`` "") or of task
        ``scope``: ``concurrency`` and ``rate`` ("N/period_ms") are "" to
        leave unchanged, "-" to remove (``lua/queue_limit.lua``). Returns the
        previous ``(concurrency, rate)`` as stored ("" = none). A change
        writes an audit event (action ``limit``) naming ``actor``.

        Raises:
            ScriptReplyError: a value the script refuses (nothing written).
        """
        args = [scope, concurrency, rate, self.events_maxlen, actor]
        reply = self._run("queue_limit", qk.extended(), args)
        if not isinstance(reply, list) or len(reply) != 2:
            raise ScriptError(f"unexpected queue_limit reply {reply!r}")
        return _s(reply[0]), _s(reply[1])
