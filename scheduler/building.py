"""Turning an enqueue request into a validated, encoded job (no Redis I/O).

Everything that can be wrong with a job is found here, before anything is
written. The part shared by all jobs of one task and option set (queue,
priority text, options) is validated once and cached; per job only the id,
payload, ETA and metadata are encoded.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

import attrs

from scheduler import defaults
from scheduler.backend.record import JobOptions
from scheduler.backend.scripts import EnqueueItem
from scheduler.codec import DEFAULT_CODEC, JSONCodec
from scheduler.errors import ValidationError
from scheduler.learning import resolve_inputs
from scheduler.priority import compact_float
from scheduler.serialization import encode_meta
from scheduler.task import Backoff, EnqueueOptions, Task
from scheduler.timeutil import datetime_to_ms, seconds, seconds_to_ms
from scheduler.validation import shown, validate_job_id, validate_queue_name, validate_task_name

__all__ = [
    "IdSource",
    "JobBuilder",
    "JobDefaults",
    "Template",
    "check_attempts",
    "check_lease",
    "check_timeout",
]


class IdSource:
    """Random job ids: 16 URL-safe characters (about 96 random bits; never a
    leading ``-``, which a command line would read as an option), drawn 256 at a
    time from ``os.urandom``: 12 random
    bytes are exactly 16 base64 characters, so one ``urandom`` and one
    encoding serve a block of ids. Thread-safe."""

    _BLOCK = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text = ""
        self._pos = 0

    def next(self) -> str:
        with self._lock:
            if self._pos >= len(self._text):
                raw = os.urandom(12 * self._BLOCK)
                self._text = base64.urlsafe_b64encode(raw).decode("ascii")
                self._pos = 0
            start = self._pos
            self._pos += 16
            job_id = self._text[start : start + 16]
        # An id starting with "-" reads as an option on a command line
        # (``scheduler job show -x...``): never start with one.
        return "_" + job_id[1:] if job_id[0] == "-" else job_id


@attrs.define
class JobDefaults:
    """The app-wide job defaults a task or a job may override.

    Mutable: the app's setters change it, and a :class:`JobBuilder` reads it
    at each build (its cache key includes every field).

    Attributes:
        queue: queue of tasks and jobs that do not name one.
        max_attempts: leases before a job goes dead (>= 1).
        lease: lease duration (visibility timeout), seconds.
        timeout: execution time limit of one attempt, seconds; None = none.
        result_ttl: retention of succeeded/cancelled records, seconds.
        dead_ttl: retention of dead records, seconds; None keeps them.
        backoff: retry delay policy of tasks that do not set one.
        max_payload_bytes: limit on encoded ``[args, kwargs]`` and results, bytes.
    """

    queue: str = defaults.QUEUE
    max_attempts: int = defaults.MAX_ATTEMPTS
    lease: float = defaults.LEASE
    timeout: float | None = defaults.TIMEOUT
    result_ttl: float = defaults.RESULT_TTL
    dead_ttl: float | None = defaults.DEAD_TTL
    backoff: Backoff = attrs.field(factory=Backoff)
    max_payload_bytes: int = defaults.MAX_PAYLOAD_BYTES


#: What the jobs of one task and options share: task name, priority, inputs,
#: options, ETA ms, delay ms, meta (:meth:`JobBuilder._shared`).
_Shared = tuple[str, str, str, str, int | None, int | None, str]
_NO_SHARED: _Shared = ("", "", "", "", None, None, "")


class JobBuilder:
    """Validates and encodes jobs (no Redis I/O): used by the app's enqueue
    and by cron schedules, so both build exactly the same job.

    Args:
        tasks: registered tasks by name (read at each build: tasks registered
            later are found).
        job_defaults: the app-wide defaults (read at each build, so changed
            defaults apply; the cache key includes them).
        codec: encodes the arguments (default plain JSON).
    """

    def __init__(
        self,
        tasks: Mapping[str, Task[Any, Any]],
        job_defaults: JobDefaults,
        codec: JSONCodec = DEFAULT_CODEC,
    ) -> None:
        self._tasks = tasks
        self._codec = codec
        self._defaults = job_defaults
        self._templates: dict[tuple[Any, ...], Template] = {}
        self._ids = IdSource()

    def build(
        self,
        task: str | Task[Any, Any],
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        o: EnqueueOptions,
    ) -> tuple[str, EnqueueItem]:
        """Validate and encode one job (:meth:`build_many` of one); raises
        :class:`ValidationError` subclasses."""
        return self.build_many(((task, args, kwargs, o),))[0]

    def build_many(
        self,
        jobs: Iterable[
            tuple[str | Task[Any, Any], Sequence[Any], dict[str, Any] | None, EnqueueOptions]
        ],
    ) -> list[tuple[str, EnqueueItem]]:
        """:meth:`build` for many ``(task, args, kwargs, options)``: the same
        validation and the same items, with the per-task part (and the
        options' ETA, delay and metadata) worked out once per run of jobs
        that share their task and options objects (a bulk enqueue of one
        task), and the ids drawn under one lock. Raises as :meth:`build`."""
        out: list[tuple[str, EnqueueItem]] = []
        encode = self._codec.encode_payload
        limit = self._defaults.max_payload_bytes
        last_task: object = None
        last_o: object = None
        queue, shared = "", _NO_SHARED
        ids = self._ids
        for task, args, kwargs, o in jobs:
            if task is not last_task or o is not last_o:
                queue, shared = self._shared(task, o)
                last_task, last_o = task, o
            job_id = validate_job_id(o.job_id) if o.job_id is not None else ids.next()
            name, priority, inputs, options, eta_ms, delay_ms, meta = shared
            item = EnqueueItem(
                job_id,
                name,
                encode(args, kwargs, limit),
                priority,
                inputs,
                options,
                eta_ms,
                delay_ms,
                meta,
            )
            out.append((queue, item))
        return out

    def _shared(self, task: str | Task[Any, Any], o: EnqueueOptions) -> tuple[str, _Shared]:
        """The queue and what every job of ``task`` with options ``o`` shares
        (task name, priority, inputs, options, ETA ms, delay ms, meta): all
        but the id and the payload. Raises :class:`ValidationError` subclasses."""
        if isinstance(task, Task):
            t: Task[Any, Any] | None = task
        else:
            t = self._tasks.get(validate_task_name(task))
        template = self._template(task if t is None else t, o)
        if o.delay is not None and o.eta is not None:
            raise ValidationError("give either delay or eta, not both")
        return template.queue, (
            template.task,
            template.priority,
            template.inputs,
            template.options,
            datetime_to_ms(o.eta) if o.eta is not None else None,
            seconds_to_ms(o.delay, "delay") if o.delay is not None else None,
            encode_meta(o.meta) if o.meta is not None else "",
        )

    def _template(self, task: str | Task[Any, Any], o: EnqueueOptions) -> Template:
        """The validated, encoded per-task/per-options part of a job, cached.

        The cache key holds every input (task, options, app defaults), so a
        changed default yields a new entry; the cache is cleared past 1024.
        Each value enters the key with its type: ``True == 1`` and
        ``Fraction(1) == 1`` in Python, so an untyped key would hand a
        ``priority=True`` job the template validated for ``priority=1``
        (booleans are not numbers here: they are refused).
        """
        app = self._defaults
        values: tuple[Any, ...] = (
            task,
            o.queue,
            o.priority,
            o.weight,
            o.time,
            o.resource,
            o.alpha,
            o.min_samples,
            o.max_attempts,
            o.lease,
            o.timeout,
            o.result_ttl,
            app.queue,
            app.max_attempts,
            app.lease,
            app.timeout,
            app.result_ttl,
            app.dead_ttl,
        )
        if isinstance(task, Task):
            values += (
                task.name,
                task.queue,
                task.priority,
                task.weight,
                task.time,
                task.resource,
                task.alpha,
                task.min_samples,
                task.max_attempts,
                task.lease,
                task.timeout,
                task.result_ttl,
            )
        key = _typed(values)
        try:
            found = self._templates.get(key)
        except TypeError:  # an unhashable option value: validated (and refused) below
            key, found = (), None
        if found is not None:
            return found
        t = task if isinstance(task, Task) else None
        name = task.name if isinstance(task, Task) else task
        queue = validate_queue_name(
            o.queue if o.queue is not None else (t.queue if t else app.queue)
        )
        formula_given = o.weight is not None or o.time is not None or o.resource is not None
        explicit = o.priority
        if explicit is None and not formula_given and t is not None:
            explicit = t.priority
        priority, inputs = resolve_inputs(
            explicit,
            o.weight if o.weight is not None else (t.weight if t else defaults.WEIGHT),
            o.time if o.time is not None else (t.time if t else defaults.TIME),
            o.resource if o.resource is not None else (t.resource if t else defaults.RESOURCE),
            o.alpha if o.alpha is not None else (t.alpha if t else defaults.ALPHA),
            o.min_samples
            if o.min_samples is not None
            else (t.min_samples if t else defaults.MIN_SAMPLES),
        )
        max_attempts = check_attempts(
            o.max_attempts
            if o.max_attempts is not None
            else (t.max_attempts if t else app.max_attempts)
        )
        lease = check_lease(o.lease if o.lease is not None else (t.lease if t else app.lease))
        ttl = seconds(
            o.result_ttl if o.result_ttl is not None else (t.result_ttl if t else app.result_ttl),
            "result_ttl",
        )
        if o.timeout is not None:
            timeout = check_timeout(None if o.timeout == float("inf") else o.timeout)
        else:
            timeout = t.timeout if t else app.timeout
        job_options = JobOptions(
            max_attempts=max_attempts,
            lease_ms=seconds_to_ms(lease),
            result_ttl_ms=seconds_to_ms(ttl),
            dead_ttl_ms=-1 if app.dead_ttl is None else seconds_to_ms(app.dead_ttl),
            timeout_ms=None if timeout is None else seconds_to_ms(timeout, "timeout"),
        )
        template = Template(name, queue, compact_float(priority), inputs, job_options.encode())
        if len(self._templates) >= 1024:
            self._templates.clear()
        if key:
            self._templates[key] = template
        return template


def _typed(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with their types, for a cache key that tells ``True``,
    ``1`` and ``1.0`` apart (``map`` runs in C: the key is built per job)."""
    return (values, tuple(map(type, values)))


class Template(NamedTuple):
    """The part of an encoded job shared by jobs of one task and option set."""

    task: str
    queue: str
    priority: str
    inputs: str
    options: str


def check_attempts(value: object) -> int:
    """Return ``value`` if it is an ``int`` in ``[1, MAX_ATTEMPTS_LIMIT]`` (max
    attempts; :data:`scheduler.defaults.MAX_ATTEMPTS_LIMIT`, one million);
    raises :class:`ValidationError` otherwise."""
    limit = defaults.MAX_ATTEMPTS_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValidationError(f"max_attempts must be an int in [1, {limit}], got {shown(value)}")
    return value


def check_timeout(value: float | timedelta | None) -> float | None:
    """Return an execution timeout in seconds (1 ms .. :data:`defaults.MAX_TIMEOUT`)
    from seconds or a ``timedelta``, or None (no limit); raises
    :class:`ValidationError` otherwise."""
    if value is None:
        return None
    result = seconds(value, "timeout")
    if not 0.001 <= result <= defaults.MAX_TIMEOUT:
        raise ValidationError(
            f"timeout must be 1 ms .. {defaults.MAX_TIMEOUT:g} s (or None), got {value!r}"
        )
    return result


def check_lease(value: float | timedelta) -> float:
    """Return a lease duration in seconds (>= 1 ms) from seconds or a
    ``timedelta``; raises :class:`ValidationError` otherwise."""
    result = seconds(value, "lease")
    if result < 0.001:
        raise ValidationError(f"lease must be at least 1 ms, got {shown(value)}")
    return result
