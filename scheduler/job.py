"""Job handles: status, result (blocking without polling), cancel, retry."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
import redis

from scheduler.backend import Backend
from scheduler.backend.codes import CancelCode, ReprioritizeCode, RetryCode, RunNowCode
from scheduler.backend.progress import Progress
from scheduler.backend.record import JobRecord, JobState
from scheduler.codec import DEFAULT_CODEC, JSONCodec
from scheduler.errors import (
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    ResultTimeoutError,
)
from scheduler.priority import compact_float, resolve_priority
from scheduler.serialization import decode_error, encode_error
from scheduler.timeutil import ms_to_datetime
from scheduler.validation import resolve_actor

if TYPE_CHECKING:
    from scheduler.backend.aio import AsyncBackend

__all__ = ["Job", "JobInfo"]

log = logging.getLogger("scheduler.job")

#: Longest single wait on the pub/sub socket before re-reading the record, seconds.
_WAIT_SLICE = 30.0


@attrs.frozen
class JobInfo:
    """Everything known about a job (a snapshot).

    Times are aware UTC ``datetime`` objects (server clock).

    Attributes:
        id, queue, task, state: identity and lifecycle state.
        args, kwargs: decoded payload (None if it cannot be decoded).
        priority: effective base priority; ``inputs`` is ``(weight, time,
            resource)`` when it came from the formula, else None; with a
            learned time (``time="auto"``) ``estimate`` says how the time
            was made (:class:`scheduler.backend.record.LearnedTime`),
            else it is None.
        attempts, max_attempts: executions started (plus the current
            lease while it has not started) / allowed.
        enqueued_at, ready_at: enqueue time; ETA (or when it became ready).
        finished_at: when it reached a final state, or None.
        lease_deadline: current lease deadline if leased, else None.
        worker: id of the worker holding (or that last held) the lease, or "".
        result: decoded result if succeeded, else None.
        error: error record ``{"error", "type", "traceback", "attempt"}`` of
            the last failure (or cancel reason), or None; with
            ``"escaped": true`` when text that was not valid Unicode (lone
            surrogates) was escaped to be stored.
        meta: metadata kept with the job (``{}`` if none), e.g. cron origin.
        started_at: when the current attempt started running (server clock;
            set while leased and started), else None -- a leased job
            without it waits in its worker's prefetch buffer.
        record: the raw decoded record.
    """

    id: str
    queue: str
    task: str
    state: JobState
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    priority: float
    inputs: tuple[float, float, float] | None
    attempts: int
    max_attempts: int
    enqueued_at: datetime
    ready_at: datetime
    finished_at: datetime | None
    lease_deadline: datetime | None
    worker: str
    result: Any
    error: dict[str, Any] | None
    meta: dict[str, Any]
    record: JobRecord
    started_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (datetimes as ISO 8601 strings)."""

        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "id": self.id,
            "queue": self.queue,
            "task": self.task,
            "state": self.state.value,
            "args": self.args,
            "kwargs": self.kwargs,
            "priority": self.priority,
            "weight": self.inputs[0] if self.inputs else None,
            "time": self.inputs[1] if self.inputs else None,
            "resource": self.inputs[2] if self.inputs else None,
            "estimate": attrs.asdict(self.record.estimate) if self.record.estimate else None,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "enqueued_at": iso(self.enqueued_at),
            "ready_at": iso(self.ready_at),
            "finished_at": iso(self.finished_at),
            "lease_deadline": iso(self.lease_deadline),
            "worker": self.worker or None,
            "result": self.result,
            "error": self.error,
            "meta": self.meta,
            "started_at": iso(self.started_at),
        }


def job_info(
    queue: str, rec: JobRecord, lease_deadline_ms: float | None, codec: JSONCodec = DEFAULT_CODEC
) -> JobInfo:
    """Build a :class:`JobInfo` from a decoded record (arguments and result
    decoded with ``codec``; default plain JSON)."""
    try:
        args, kwargs = codec.decode_payload(rec.payload)
        a: list[Any] | None = args
        k: dict[str, Any] | None = kwargs
    except ValueError:
        a, k = None, None
    result: Any = None
    error = None
    if rec.outcome:
        if rec.state is JobState.SUCCEEDED:
            try:
                result = codec.decode_result(rec.outcome)
            except ValueError:
                result = rec.outcome
        else:
            error = decode_error(rec.outcome)
    return JobInfo(
        id=rec.job_id,
        queue=queue,
        task=rec.task,
        state=rec.state,
        args=a,
        kwargs=k,
        priority=rec.priority,
        inputs=rec.inputs,
        attempts=rec.attempts,
        max_attempts=rec.options.max_attempts,
        enqueued_at=ms_to_datetime(rec.enqueued_ms),
        ready_at=ms_to_datetime(rec.ready_ms),
        finished_at=ms_to_datetime(rec.finished_ms) if rec.finished_ms is not None else None,
        lease_deadline=(
            ms_to_datetime(int(lease_deadline_ms))
            if lease_deadline_ms is not None and rec.state is JobState.LEASED
            else None
        ),
        worker=rec.worker,
        result=result,
        error=error,
        meta=_meta(rec.meta),
        record=rec,
        started_at=(
            ms_to_datetime(rec.started_ms)
            if rec.started_ms is not None and rec.state is JobState.LEASED
            else None
        ),
    )


class Job:
    """Handle of one job (cheap; holds only the id and queue).

    Args:
        backend: the storage layer the job lives in.
        job_id: job id.
        queue: queue name.
        codec: decodes arguments and results (the app's; default plain JSON).
        aio: returns the async storage layer, for :meth:`aresult` (the app
            passes its own).

    Attributes:
        backend, id, queue, codec: as given.
    """

    def __init__(
        self,
        backend: Backend,
        job_id: str,
        queue: str,
        *,
        codec: JSONCodec = DEFAULT_CODEC,
        aio: Callable[[], AsyncBackend] | None = None,
    ) -> None:
        self.backend = backend
        self.id = job_id
        self.queue = queue
        self.codec = codec
        self._aio = aio
        self._keys = backend.queue(queue)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, queue={self.queue!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and (other.id, other.queue) == (self.id, self.queue)

    def __hash__(self) -> int:
        return hash((self.id, self.queue))

    def _record(self) -> JobRecord:
        rec = self.backend.read_record(self.queue, self.id)
        if rec is None:
            raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
        return rec

    def info(self) -> JobInfo:
        """A snapshot of every field. Raises :class:`JobNotFoundError`."""
        rec, deadline = self.backend.read_record_and_deadline(self.queue, self.id)
        if rec is None:
            raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
        return job_info(self.queue, rec, deadline, self.codec)

    @property
    def progress(self) -> Progress | None:
        """The progress the running job last reported (``set_progress``), or
        None (none reported, or the job finished and it was swept).

        Raises:
            redis.RedisError: Redis could not be read.
        """
        return self.backend.progress(self.queue, self.id)

    @property
    def status(self) -> JobState:
        """Current state. Raises :class:`JobNotFoundError`."""
        return self._record().state

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job to finish and return its result.

        Blocks on the queue's ``finished`` pub/sub channel -- no polling -- and
        re-reads the record at least every 30 s as a safety net. A dropped
        connection (Redis restarted, a failover, a proxy timeout) is not an
        error: it re-subscribes and re-reads the record, with backoff (0.1 s
        doubling to 5 s) while the server stays unreachable, until
        ``timeout``.

        Args:
            timeout: seconds to wait; None waits forever; 0 checks once.

        Raises:
            ResultTimeoutError: not finished within ``timeout``.
            JobFailedError: the job ended dead (has ``error``/``traceback``).
            JobCancelledError: the job was cancelled.
            JobNotFoundError: no such job (or its record expired).
            redis.ConnectionError, redis.TimeoutError: the server was still
                unreachable when ``timeout`` passed (or at the first read,
                if ``timeout`` is 0).
            redis.RedisError: any other error reply (e.g. an ACL denial).
        """
        rec = self._record()
        if rec.state.is_final:
            return _final(rec, self.codec)
        if timeout is not None and timeout <= 0:
            raise ResultTimeoutError(f"job {self.id} is {rec.state.value}")
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = 0
        while True:
            try:
                return self._wait_finished(deadline)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                failures += 1
                pause = min(5.0, 0.1 * 2 ** (failures - 1))
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise
                log.warning(
                    "job %s: connection lost while waiting for its result (%s); "
                    "reconnecting in %.1f s",
                    self.id,
                    exc,
                    pause,
                )
                time.sleep(pause if left is None else min(pause, left))

    def _wait_finished(self, deadline: float | None) -> Any:
        """One subscription's worth of :meth:`result` (``deadline``: monotonic)."""
        with self.backend.subscribe_finished(self.queue, _WAIT_SLICE) as sub:
            while True:
                rec = self._record()  # after subscribing: no lost wake-up
                if rec.state.is_final:
                    return _final(rec, self.codec)
                remaining = _WAIT_SLICE if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    raise ResultTimeoutError(f"job {self.id} is {rec.state.value}")
                end = time.monotonic() + min(remaining, _WAIT_SLICE)
                while (left := end - time.monotonic()) > 0:
                    data = sub.get(timeout=left)
                    # The message names the finished jobs, joined by ",".
                    if data is not None and self.id in data.split(","):
                        break

    async def aresult(self, timeout: float | None = None) -> Any:
        """:meth:`result` for an event loop (``redis.asyncio``): waits on the
        queue's ``finished`` pub/sub channel -- no polling -- re-reading the
        record at least every 30 s, and reconnects with backoff (0.1 s
        doubling to 5 s) while the server is unreachable, until ``timeout``.

        Raises:
            as :meth:`result`; also ``RuntimeError`` for a handle made
            without an app (``Job(backend, ...)``): get it from ``app.job()``.
        """
        if self._aio is None:
            raise RuntimeError("this Job handle has no async backend; use app.job(...)")
        aio = self._aio()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        failures = 0
        while True:
            try:
                return await self._await_finished(aio, deadline)
            except (redis.ConnectionError, redis.TimeoutError):
                failures += 1
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    raise
                pause = min(5.0, 0.1 * 2 ** (failures - 1))
                await asyncio.sleep(pause if left is None else min(pause, left))

    async def _await_finished(self, aio: AsyncBackend, deadline: float | None) -> Any:
        """One subscription's worth of :meth:`aresult` (``deadline``: loop time)."""
        loop = asyncio.get_running_loop()
        rec = await aio.read_record(self._keys, self.id)
        if rec is not None and rec.state.is_final:
            return _final(rec, self.codec)
        async with await aio.subscribed(self._keys) as finished:
            while True:
                rec = await aio.read_record(self._keys, self.id)  # after subscribing
                if rec is None:
                    raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
                if rec.state.is_final:
                    return _final(rec, self.codec)
                left = _WAIT_SLICE if deadline is None else deadline - loop.time()
                if left <= 0:
                    raise ResultTimeoutError(f"job {self.id} is {rec.state.value}")
                await finished.wait(self.id, min(left, _WAIT_SLICE))

    def cancel(self, reason: str = "cancelled", *, actor: str | None = None) -> bool:
        """Cancel the job if it has not finished.

        A leased job's worker is refused when it reports (stale lease).
        ``actor`` (default ``$SCHEDULER_ACTOR`` or ``user@host``) is named in
        the audit event; the same holds for :meth:`retry`,
        :meth:`reprioritize` and :meth:`run_now`.

        Returns:
            True if cancelled now, False if it had already finished.

        Raises:
            JobNotFoundError: no such job.
            ValidationError: a bad ``actor``.
        """
        who = resolve_actor(actor)
        code = self.backend.scripts.cancel(
            self._keys, self.id, encode_error(reason, "Cancelled"), actor=who
        )
        if code == CancelCode.NO_JOB:
            raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
        return code == CancelCode.CANCELLED

    def retry(self, *, actor: str | None = None) -> bool:
        """Requeue a dead, cancelled, succeeded or failed-awaiting-retry job now.

        Returns False if the job is ready, delayed or leased (nothing done).
        Raises :class:`JobNotFoundError`.
        """
        code = self.backend.scripts.retry(self._keys, [self.id], actor=resolve_actor(actor))[0]
        if code == RetryCode.NO_JOB:
            raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
        return code == RetryCode.REQUEUED

    def reprioritize(
        self,
        priority: float | None = None,
        *,
        weight: float = 1.0,
        time: float = 1.0,
        resource: float = 1.0,
        actor: str | None = None,
    ) -> bool:
        """Change a waiting job's priority (explicit, or from the formula inputs).

        Returns False if the job is leased or finished. Raises
        :class:`JobNotFoundError` or :class:`InvalidPriorityError`.
        """
        value, inputs = resolve_priority(priority, weight, time, resource)
        who = resolve_actor(actor)
        code = self.backend.scripts.reprioritize(
            self._keys, self.id, compact_float(value), inputs, actor=who
        )
        if code == ReprioritizeCode.NO_JOB:
            raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
        return code == ReprioritizeCode.CHANGED

    def run_now(self, *, actor: str | None = None) -> bool:
        """Make a delayed job ready now. False if it is not delayed."""
        code = self.backend.scripts.run_now(self._keys, self.id, actor=resolve_actor(actor))
        if code == RunNowCode.NO_JOB:
            raise JobNotFoundError(f"no job {self.id!r} in queue {self.queue!r}")
        return code == RunNowCode.PROMOTED


def _meta(text: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"raw": value}


def _final(rec: JobRecord, codec: JSONCodec) -> Any:
    if rec.state is JobState.SUCCEEDED:
        return codec.decode_result(rec.outcome) if rec.outcome else None
    err = decode_error(rec.outcome) if rec.outcome else {"error": rec.state.value}
    if rec.state is JobState.CANCELLED:
        raise JobCancelledError(f"job {rec.job_id} was cancelled: {err.get('error', '')}")
    raise JobFailedError(rec.job_id, str(err.get("error", "")), str(err.get("traceback", "")))
