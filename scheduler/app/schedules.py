"""Schedules declared on the app: ``app.cron(...)``, ``app.every(...)`` and
``app.schedules`` (part of :class:`scheduler.Scheduler`; the work is done by
:mod:`scheduler.cron`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Unpack

from scheduler.backend import Backend
from scheduler.building import JobBuilder
from scheduler.cron import Schedule, ScheduleOptions, ScheduleStore
from scheduler.task import Task

__all__ = ["ScheduleDeclarations"]


class ScheduleDeclarations:
    """Cron and interval schedules of the app; mixed into :class:`scheduler.Scheduler`."""

    backend: Backend
    builder: JobBuilder

    @functools.cached_property
    def schedules(self) -> ScheduleStore:
        """This app's cron and interval schedules: the ones declared in code
        (:meth:`cron`, :meth:`every`) and the ones stored in Redis -- add,
        sync, get, list, pause, resume, remove (see :mod:`scheduler.cron`)."""
        return ScheduleStore(self.backend, self.builder)

    def cron(
        self,
        expr: str,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        declare: bool = True,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Declare a cron schedule: enqueue ``task(*args, **kwargs)`` whenever
        ``expr`` matches the wall-clock time of ``tz``.

        Args:
            expr: 5 fields (``"*/5 * * * *"``), 6 fields with seconds first
                (``"*/10 * * * * *"``), or ``@hourly``/``@daily``/... aliases.
            task: a registered :class:`Task` or a task name.
            args, kwargs: the job's arguments (JSON-serializable).
            declare: True (default): remember it as declared in code, upserted
                by ``schedules.sync()`` when a cron process starts. False:
                only build it (store it with ``app.schedules.add(...)``).
            options: ``id``, ``tz``, ``start``, ``end``, ``jitter``,
                ``misfire``, ``misfire_grace``, ``paused`` and the job options
                ``queue``, ``priority``/``weight``/``time``/``resource``,
                ``max_attempts``, ``lease``, ``result_ttl``, ``meta`` -- see
                :class:`scheduler.cron.ScheduleOptions`.

        Returns:
            The validated :class:`scheduler.cron.Schedule` (nothing written yet).

        Raises:
            InvalidScheduleError: bad expression, timezone, bounds, jitter or
                misfire setting (a :class:`ValidationError`).
            ValidationError: bad job options or arguments, as for :meth:`enqueue`.
        """
        schedule = self.schedules.build(task, args, kwargs, cron=expr, **options)
        return self.schedules.declare(schedule) if declare else schedule

    def every(
        self,
        interval: float | timedelta,
        task: str | Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        declare: bool = True,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Declare an interval schedule: enqueue the job every ``interval``
        (seconds or ``timedelta``, >= 1 s) at ``start + k * interval`` --
        without ``start``, aligned to the Unix epoch (``every=3600`` fires on
        the hour, UTC). Other arguments as for :meth:`cron`.

        Raises:
            InvalidScheduleError, ValidationError: as for :meth:`cron`.
        """
        schedule = self.schedules.build(task, args, kwargs, every=interval, **options)
        return self.schedules.declare(schedule) if declare else schedule
