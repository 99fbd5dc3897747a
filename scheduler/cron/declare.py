"""The declaration: :class:`ScheduleOptions` and :func:`build_schedule`, which
turns a ``cron=`` / ``every=`` declaration and its options (seconds,
``timedelta``, ``datetime``) into a validated :class:`~scheduler.cron.schedule.Schedule`
(integer ms), the job built as :meth:`scheduler.Scheduler.enqueue` would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from scheduler import defaults
from scheduler.backend.cron_scripts import JobTemplate
from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.policy import MisfirePolicy
from scheduler.cron.schedule import Schedule
from scheduler.cron.timing import MAX_MS, get_zone
from scheduler.errors import UnknownOptionError, ValidationError
from scheduler.serialization import encode_meta
from scheduler.task import EnqueueOptions, Task
from scheduler.timeutil import seconds_to_ms
from scheduler.validation import shown, validate_schedule_id

if TYPE_CHECKING:
    from scheduler.building import JobBuilder

__all__ = ["DEFAULT_MISFIRE_GRACE", "ScheduleOptions", "build_schedule"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Default ``misfire_grace``, seconds.
DEFAULT_MISFIRE_GRACE = defaults.MISFIRE_GRACE


class ScheduleOptions(TypedDict, total=False):
    """Keyword options of :meth:`scheduler.Scheduler.cron` / ``every``.

    Keys:
        id: schedule id (default: the task name); unique per queue.
        tz: IANA timezone of the cron expression and of naive start/end
            (default ``"UTC"``).
        start: first allowed fire time (``datetime``, inclusive); also the
            anchor of an interval schedule (default: the Unix epoch).
        end: last allowed fire time (``datetime``, inclusive).
        jitter: each job is delayed by a deterministic pseudo-random amount in
            ``[0, jitter)`` after its fire time; seconds or ``timedelta``.
        misfire: ``"coalesce"`` (default), ``"skip"`` or ``"catch_up"``.
        misfire_grace: how late a firing may be and still run on its own
            under ``skip``/``catch_up``; seconds or ``timedelta`` (default 60 s).
        paused: create the schedule paused (later updates keep its state).
        queue, priority, weight, time, resource, max_attempts, lease,
        result_ttl: job options, as for :class:`scheduler.EnqueueOptions`.
        meta: extra JSON metadata for every job (the schedule's keys win).
    """

    id: str
    tz: str
    start: datetime | None
    end: datetime | None
    jitter: float | timedelta
    misfire: str | MisfirePolicy
    misfire_grace: float | timedelta
    paused: bool
    queue: str
    priority: float
    weight: float
    time: float
    resource: float
    max_attempts: int
    lease: float | timedelta
    result_ttl: float | timedelta
    meta: dict[str, Any]


def _when_ms(name: str, when: datetime | None, tz: str) -> int | None:
    if when is None:
        return None
    if not isinstance(when, datetime):
        raise InvalidScheduleError(f"{name} must be a datetime, got {shown(when)}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=get_zone(tz))
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _duration_ms(name: str, value: float | timedelta) -> int:
    try:
        return seconds_to_ms(value, name)
    except ValidationError as exc:
        raise InvalidScheduleError(str(exc)) from None


def build_schedule(
    builder: JobBuilder,
    task: str | Task[Any, Any],
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    cron: str | None = None,
    every: float | timedelta | None = None,
    **options: Any,
) -> Schedule:
    """Validate a schedule declaration and return it (nothing is written).

    Args:
        builder: builds the job (the app's task registry and defaults apply).
        task: a :class:`scheduler.Task` or a task name.
        args, kwargs: the job's arguments (JSON-serializable).
        cron: a cron expression (see :class:`~scheduler.cron.timing.CronRule`).
        every: an interval (seconds or ``timedelta``, >= 1 s).
        options: see :class:`ScheduleOptions`.

    Raises:
        InvalidScheduleError: bad expression, timezone, interval, bounds,
            jitter or misfire setting, or an expression that never matches.
        ValidationError: bad job options, arguments or id (as for enqueue).
        UnknownOptionError: unknown option (a ValidationError and a TypeError).
    """
    unknown = set(options) - set(ScheduleOptions.__annotations__)
    if unknown:
        raise UnknownOptionError(f"unknown schedule option(s): {', '.join(sorted(unknown))}")
    tz = options.get("tz", "UTC")
    get_zone(tz)
    every_ms = None if every is None else _duration_ms("every", every)
    user_meta = options.get("meta")
    encode_meta(user_meta)  # validate now
    enqueue_options = EnqueueOptions(
        **{
            key: options[key]
            for key in (
                "queue",
                "priority",
                "weight",
                "time",
                "resource",
                "max_attempts",
                "lease",
                "result_ttl",
            )
            if key in options
        }
    )
    queue, item = builder.build(task, tuple(args), kwargs, enqueue_options)
    schedule_id = options.get("id")
    if schedule_id is None:
        try:
            schedule_id = validate_schedule_id(item.task)
        except ValidationError:
            raise InvalidScheduleError(
                f"task name {item.task!r} is not a valid schedule id; give id=..."
            ) from None
    schedule_id = validate_schedule_id(schedule_id)
    schedule = Schedule(
        id=schedule_id,
        queue=queue,
        job=JobTemplate(
            task=item.task,
            payload=item.payload,
            priority=item.priority,
            inputs=item.inputs,
            options=item.options,
            meta=dict(user_meta) if user_meta else None,
        ),
        cron=cron,
        every_ms=every_ms,
        tz=tz,
        start_ms=_when_ms("start", options.get("start"), tz),
        end_ms=_when_ms("end", options.get("end"), tz),
        jitter_ms=_duration_ms("jitter", options.get("jitter", 0.0)),
        misfire=MisfirePolicy.parse(options.get("misfire", MisfirePolicy.COALESCE)),
        grace_ms=_duration_ms("misfire_grace", options.get("misfire_grace", DEFAULT_MISFIRE_GRACE)),
        paused=bool(options.get("paused", False)),
    )
    # With or without `end`: an expression that never matches again (e.g.
    # "0 0 31 2 *") is an error, not a schedule stored as ended.
    if schedule.rule.next_after(int(time.time() * 1000)) is None:
        raise InvalidScheduleError(f"{schedule.describe()} never fires")
    schedule.job_id(MAX_MS)  # the derived job ids are valid
    return schedule
