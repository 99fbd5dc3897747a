"""Loading the Lua scripts, and one thin typed wrapper per script.

The scripts are files in the repository's top-level ``lua/`` directory,
loaded by :mod:`scheduler.backend.lualoader` (includes expanded, unused library
functions pruned), so shared code (record codec, transitions) exists once.

Scripts run through redis-py :class:`~redis.commands.core.Script` objects:
EVALSHA, falling back to SCRIPT LOAD on ``NOSCRIPT`` (e.g. after a Redis
restart). Each wrapper below is the single place where one script's KEYS and
ARGV order is written down on the Python side.

Retries: redis-py re-sends a command after a timeout or connection error
(10 times by default in redis-py 8). Every script here is idempotent under
such a repeat -- enqueue by job id, lease by request id (reply cache),
complete/fail/release/heartbeat by lease token, the rest by state checks --
so a repeat never has a double effect (tested in ``tests/test_idempotency.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import attrs
import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from scheduler.backend.caller import ScriptCaller
from scheduler.backend.keys import QueueKeys
from scheduler.backend.lualoader import load_script_text
from scheduler.errors import ScriptError

__all__ = [
    "SCRIPT_NAMES",
    "EnqueueItem",
    "LeaseReply",
    "ScriptCall",
    "Scripts",
    "load_script_text",
]

T = TypeVar("T")

SCRIPT_NAMES = (
    "enqueue",
    "lease",
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
)


def _s(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _ints(reply: Any, expected: int) -> list[int]:
    if not isinstance(reply, list) or len(reply) != expected:
        raise ScriptError(f"unexpected script reply {reply!r}")
    return [int(x) for x in reply]


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
    """

    wake_ms: int
    paused: bool
    jobs: list[tuple[str, str]]


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
    if not isinstance(reply, list) or len(reply) < 2 or len(reply) % 2:
        raise ScriptError(f"unexpected lease reply {reply!r}")
    jobs = [(_s(reply[i]), _s(reply[i + 1])) for i in range(2, len(reply), 2)]
    return LeaseReply(wake_ms=int(reply[0]), paused=int(reply[1]) == 1, jobs=jobs)


@attrs.define
class Scripts:
    """The scheduler's Lua scripts bound to one redis-py client.

    Attributes:
        client: a ``redis.Redis`` (bytes or decoded responses both work).
        events_maxlen: approximate cap of each queue's event stream; 0 turns
            events off.
        promote_batch: max delayed jobs promoted per lease call.
        reap_batch: max expired leases requeued per lease call.
        expire_batch: max expired finished/dead records deleted per call.
        lease_cache_ms: lifetime of a lease request's reply cache, ms.
    """

    client: redis.Redis
    events_maxlen: int = 10_000
    promote_batch: int = 200
    reap_batch: int = 100
    expire_batch: int = 50
    lease_cache_ms: int = 60_000
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
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]
        raise ScriptError("scripts could not be loaded")  # pragma: no cover

    def command(self, call: ScriptCall[Any]) -> tuple[Any, ...]:
        """The EVALSHA command of ``call``, for sending it on another connection."""
        return ("EVALSHA", self._scripts[call.name].sha, len(call.keys), *call.keys, *call.args)

    def _do(self, call: ScriptCall[T]) -> T:
        return call.parse(self._run(call.name, call.keys, call.args))

    def enqueue_call(self, qk: QueueKeys, items: Sequence[EnqueueItem]) -> ScriptCall[list[bool]]:
        """The :meth:`enqueue` call, for :meth:`run_many` / :meth:`run_streamed`."""
        args: list[Any] = [self.events_maxlen, len(items)]
        for item in items:
            args.extend(item.argv())
        n = len(items)
        return ScriptCall("enqueue", qk.standard(), args, lambda r: [c == 1 for c in _ints(r, n)])

    def enqueue(self, qk: QueueKeys, items: Sequence[EnqueueItem]) -> list[bool]:
        """Create jobs; returns per job True if created, False if the id existed."""
        return self._do(self.enqueue_call(qk, items))

    def run_streamed(self, calls: Iterable[ScriptCall[Any]]) -> list[Any]:
        """Like :meth:`run_many`, but each call is sent as soon as the iterator
        yields it, with up to two replies outstanding: building the next call
        (e.g. the next bulk-enqueue batch) overlaps with Redis running the
        previous one. On an error the calls are sent again as a batch (every
        script is idempotent under a repeat)."""
        done: list[ScriptCall[Any]] = []
        try:
            replies = self._caller.call_streamed(
                (self.command(c) for c in _recording(calls, done)), window=2
            )
        except (redis.ConnectionError, redis.TimeoutError):
            return self.run_many(done + list(calls))
        if any(isinstance(r, NoScriptError) for r in replies):
            return self.run_many(done)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return [call.parse(reply) for call, reply in zip(done, replies, strict=True)]

    def lease_call(
        self, qk: QueueKeys, n: int, worker_id: str, request_id: str
    ) -> ScriptCall[LeaseReply]:
        """The :meth:`lease` call, for :meth:`run_many`."""
        return ScriptCall(
            "lease",
            [*qk.standard(), qk.lease_request(request_id)],
            [
                self.events_maxlen,
                n,
                worker_id,
                self.lease_cache_ms,
                self.promote_batch,
                self.reap_batch,
                self.expire_batch,
            ],
            _lease_reply,
        )

    def lease(self, qk: QueueKeys, n: int, worker_id: str, request_id: str) -> LeaseReply:
        """Lease up to ``n`` jobs for ``worker_id``; ``request_id`` makes it idempotent."""
        return self._do(self.lease_call(qk, n, worker_id, request_id))

    def heartbeat(self, qk: QueueKeys, leases: Sequence[tuple[str, str]]) -> list[int]:
        """Extend leases ``(job_id, token)``.

        Returns per job: the new deadline (ms); 1 already reported under this
        lease; 0 stale (lost); -1 gone.
        """
        args: list[Any] = [len(leases)]
        for job_id, token in leases:
            args.extend((job_id, token))
        return _ints(self._run("heartbeat", qk.standard(), args), len(leases))

    def complete_call(
        self, qk: QueueKeys, items: Sequence[tuple[str, str, str]]
    ) -> ScriptCall[list[int]]:
        """The :meth:`complete` call, for :meth:`run_many`."""
        args: list[Any] = [self.events_maxlen, self.expire_batch, len(items)]
        for item in items:
            args.extend(item)
        n = len(items)
        return ScriptCall("complete", qk.standard(), args, lambda r: _ints(r, n))

    def complete(self, qk: QueueKeys, items: Sequence[tuple[str, str, str]]) -> list[int]:
        """Record successes ``(job_id, token, result_json)``.

        Returns per job: 1 recorded, 2 already recorded, 0 stale lease, -1 gone.
        """
        return self._do(self.complete_call(qk, items))

    def fail_call(
        self, qk: QueueKeys, items: Sequence[tuple[str, str, str, int]]
    ) -> ScriptCall[list[int]]:
        """The :meth:`fail` call, for :meth:`run_many`."""
        args: list[Any] = [self.events_maxlen, len(items)]
        for item in items:
            args.extend(item)
        n = len(items)
        return ScriptCall("fail", qk.standard(), args, lambda r: _ints(r, n))

    def fail(self, qk: QueueKeys, items: Sequence[tuple[str, str, str, int]]) -> list[int]:
        """Record failures ``(job_id, token, error_json, retry_delay_ms or -1)``.

        Returns per job: 1 will retry, 2 dead, 3 already applied, 0 stale, -1 gone.
        """
        return self._do(self.fail_call(qk, items))

    def release(self, qk: QueueKeys, leases: Sequence[tuple[str, str]]) -> list[int]:
        """Release leases ``(job_id, token)``: 1 released, 2 already, 0 stale, -1 gone."""
        args: list[Any] = [self.events_maxlen, len(leases)]
        for job_id, token in leases:
            args.extend((job_id, token))
        return _ints(self._run("release", qk.standard(), args), len(leases))

    def cancel(self, qk: QueueKeys, job_id: str, reason_json: str) -> int:
        """Cancel a job: 1 cancelled, 0 already final, -1 no such job."""
        return int(self._run("cancel", qk.standard(), [self.events_maxlen, job_id, reason_json]))

    def retry(self, qk: QueueKeys, job_ids: Sequence[str]) -> list[int]:
        """Requeue finished/failed jobs: per job 1 requeued, 0 not retryable, -1 gone."""
        args: list[Any] = [self.events_maxlen, len(job_ids), *job_ids]
        return _ints(self._run("retry", qk.standard(), args), len(job_ids))

    def reprioritize(self, qk: QueueKeys, job_id: str, priority: str, inputs: str) -> int:
        """Set a waiting job's priority: 1 changed, 0 not waiting, -1 no such job."""
        args = [self.events_maxlen, job_id, priority, inputs]
        return int(self._run("reprioritize", qk.standard(), args))

    def run_now(self, qk: QueueKeys, job_id: str) -> int:
        """Promote a delayed job now: 1 promoted, 0 not delayed, -1 no such job."""
        return int(self._run("run_now", qk.standard(), [self.events_maxlen, job_id]))

    def queue_config(self, qk: QueueKeys, name: str, value: str) -> str:
        """Set queue setting ``paused`` ("0"/"1") or ``aging``; returns the old value."""
        return _s(self._run("queue_config", qk.standard(), [name, value]))

    def purge(self, qk: QueueKeys, which: str, limit: int = 500) -> int:
        """Delete up to ``limit`` jobs of set ``which``; returns how many were deleted."""
        return int(self._run("purge", qk.standard(), [which, limit]))
