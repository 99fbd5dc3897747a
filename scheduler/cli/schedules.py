"""``scheduler schedules list|add|remove|pause|resume|run-now``.

A damaged record (:class:`scheduler.cron.DamagedScheduleError`) is listed as
``damaged`` by ``list``; ``pause``, ``resume`` and ``run-now`` refuse it with
a one-line error naming the schedule, its queue and the fix (exit 1, nothing
written); ``remove`` removes it like any other; ``add`` replaces it.

Built on :class:`scheduler.cron.ScheduleStore` (``app.schedules``): every
change is one of its Lua scripts. ``run-now`` enqueues one job from the
schedule's stored job template through the ordinary ``enqueue`` script,
with the id ``cron:<schedule id>:now-<server ms>``; the schedule's own
timing is not touched (it fires as usual, paused or not).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click
from rich.table import Table

from scheduler import defaults
from scheduler.app import Scheduler
from scheduler.backend.scripts import EnqueueItem
from scheduler.cli.common import (
    actor_option,
    admin_command,
    confirm,
    console,
    echo_json,
    fail,
    get_app,
)
from scheduler.cli.enqueue import parse_json_option
from scheduler.cli.formats import format_time, parse_duration
from scheduler.cron import DamagedScheduleError, MisfirePolicy, ScheduleInfo
from scheduler.job import Job
from scheduler.serialization import encode_meta
from scheduler.timeutil import ms_to_datetime
from scheduler.validation import validate_job_id

__all__ = ["enqueue_schedule_now", "register", "schedule_to_dict"]


def _iso_ms(ms: int | None) -> str | None:
    return None if ms is None else ms_to_datetime(ms).isoformat()


def schedule_to_dict(info: ScheduleInfo) -> dict[str, Any]:
    """JSON-friendly dict of a stored schedule (documented keys, docs/operating.md)."""
    s = info.schedule
    return {
        "id": s.id,
        "queue": s.queue,
        "kind": s.kind,
        "cron": s.cron,
        "every_s": None if s.every_ms is None else s.every_ms / 1000,
        "tz": s.tz,
        "task": s.job.task,
        "status": info.status.value,
        "next_fire": _iso_ms(info.next_fire_ms),
        "last_fire": _iso_ms(info.last_fire_ms),
        "last_job": info.last_job_id,
        "fired": info.fired,
        "missed": info.missed,
        "misfire": str(s.misfire),
        "misfire_grace_s": s.grace_ms / 1000,
        "jitter_s": s.jitter_ms / 1000,
        "start": _iso_ms(s.start_ms),
        "end": _iso_ms(s.end_ms),
        "created": _iso_ms(info.created_ms),
        "updated": _iso_ms(info.updated_ms),
    }


def enqueue_schedule_now(app: Scheduler, info: ScheduleInfo) -> Job:
    """Enqueue one job of ``info``'s schedule now (enqueue script; schedule untouched)."""
    s = info.schedule
    now = app.backend.server_time_ms()
    meta: dict[str, Any] = dict(s.job.meta or {})
    meta.update(schedule=s.id, fire_at=now, manual=True)
    item = EnqueueItem(
        job_id=validate_job_id(f"cron:{s.id}:now-{now}"),
        task=s.job.task,
        payload=s.job.payload,
        priority=s.job.priority,
        inputs=s.job.inputs,
        options=s.job.options,
        meta=encode_meta(meta),
    )
    app.backend.register_queue(s.queue)
    app.backend.scripts.enqueue(app.backend.queue(s.queue), [item])
    return Job(app.backend, item.job_id, s.queue)


def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not an ISO 8601 time", 2)


def register(cli: click.Group) -> None:  # noqa: C901 -- one small nested function per click command, counted together
    """Add the ``schedules`` group to ``cli``."""

    @cli.group("schedules")
    def schedules() -> None:
        """List and manage cron and interval schedules stored in Redis."""

    queue_option = click.option(
        "-q", "--queue", default=None, help="The schedule's queue (default: search every queue)."
    )

    @admin_command(schedules, "list")
    @click.option("-q", "--queue", default=None, help="Only schedules of this queue.")
    def list_command(queue: str | None, as_json: bool) -> None:
        """Stored schedules with their rule, status, next and last fire time."""
        app = get_app()
        infos, damaged = app.schedules.scan(queue)
        if as_json:
            echo_json(
                {
                    "schedules": [schedule_to_dict(i) for i in infos],
                    "damaged": [
                        {"id": d.schedule_id, "queue": d.queue, "error": d.reason} for d in damaged
                    ],
                }
            )
            return
        now = ms_to_datetime(app.backend.server_time_ms())
        table = Table(title=f"{len(infos)} schedule(s)", title_justify="left")
        for name in ("id", "queue", "rule", "task", "status"):
            table.add_column(name, overflow="fold")
        table.add_column("next fire")
        table.add_column("last fire")
        table.add_column("fired", justify="right")
        table.add_column("missed", justify="right")
        for i in infos:
            table.add_row(
                i.id,
                i.queue,
                i.schedule.describe(),
                i.schedule.job.task,
                i.status.value,
                format_time(i.next_fire, now),
                format_time(i.last_fire, now),
                str(i.fired),
                str(i.missed),
            )
        for d in damaged:
            table.add_row(d.schedule_id, d.queue, "-", "-", "damaged", "-", "-", "-", "-")
        console().print(table)
        for d in damaged:
            click.echo(f"Warning: {d}", err=True)

    @admin_command(schedules, "add")
    @click.argument("task")
    @click.option("--cron", "cron_expr", default=None, help="Cron expression, e.g. '*/5 * * * *'.")
    @click.option("--every", default=None, help="Interval instead of --cron: 30s, 5m, 1h ...")
    @click.option("--id", "schedule_id", default=None, help="Schedule id [default: TASK].")
    @click.option("-q", "--queue", default=None, help="Queue of the schedule and its jobs.")
    @click.option("--args", "args_json", default=None, help="Positional arguments, a JSON array.")
    @click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments, JSON object.")
    @click.option("--tz", default="UTC", show_default=True, help="IANA timezone of --cron.")
    @click.option("--start", default=None, help="First allowed fire time, ISO 8601.")
    @click.option("--end", default=None, help="Last allowed fire time, ISO 8601.")
    @click.option("--jitter", default=None, help="Random delay bound per job: 10s, 1m ...")
    @click.option(
        "--misfire",
        type=click.Choice([str(p) for p in MisfirePolicy]),
        default=None,
        help="When firings were missed [default: coalesce].",
    )
    @click.option(
        "--misfire-grace",
        default=None,
        help=f"How late a firing may run [{defaults.MISFIRE_GRACE:g}s].",
    )
    @click.option("--paused", is_flag=True, help="Create it paused.")
    @click.option("-p", "--priority", type=float, default=None, help="Explicit job priority.")
    @click.option("--weight", type=float, default=None, help="Job priority input weight.")
    @click.option("--time", type=float, default=None, help="Job priority input: seconds.")
    @click.option("--resource", type=float, default=None, help="Job priority input resource.")
    @click.option(
        "--max-attempts",
        type=int,
        default=None,
        help=f"Leases before dead [{defaults.MAX_ATTEMPTS}].",
    )
    @actor_option
    def add(
        task: str,
        cron_expr: str | None,
        every: str | None,
        schedule_id: str | None,
        queue: str | None,
        args_json: str | None,
        kwargs_json: str | None,
        tz: str,
        start: str | None,
        end: str | None,
        jitter: str | None,
        misfire: str | None,
        misfire_grace: str | None,
        paused: bool,
        priority: float | None,
        weight: float | None,
        time: float | None,
        resource: float | None,
        max_attempts: int | None,
        actor: str | None,
        as_json: bool,
    ) -> None:
        """Store a schedule enqueuing TASK (by name) on --cron or --every; an
        existing id is updated (unchanged if the definition is the same)."""
        if (cron_expr is None) == (every is None):
            fail("give exactly one of --cron EXPR or --every DURATION", 2)
        if priority is not None and any(v is not None for v in (weight, time, resource)):
            fail("give either --priority or --weight/--time/--resource, not both", 2)
        options: dict[str, Any] = {"tz": tz, "paused": paused}
        given = {
            "id": schedule_id,
            "queue": queue,
            "start": _when(start, "--start"),
            "end": _when(end, "--end"),
            "jitter": parse_duration(jitter, "--jitter") if jitter else None,
            "misfire": misfire,
            "misfire_grace": parse_duration(misfire_grace, "--misfire-grace")
            if misfire_grace
            else None,
            "priority": priority,
            "weight": weight,
            "time": time,
            "resource": resource,
            "max_attempts": max_attempts,
        }
        options.update({k: v for k, v in given.items() if v is not None})
        args = parse_json_option(args_json, "--args", list)
        kwargs = parse_json_option(kwargs_json, "--kwargs", dict)
        interval = timedelta(seconds=parse_duration(every, "--every")) if every else None
        app = get_app()
        schedule = app.schedules.build(
            task, args, kwargs, cron=cron_expr, every=interval, **options
        )
        reply = app.schedules.add(schedule, actor=actor)
        info = app.schedules.get(schedule.id, schedule.queue)
        if as_json:
            echo_json({"outcome": reply.outcome, "schedule": schedule_to_dict(info)})
        else:
            click.echo(
                f"schedule {schedule.id} (queue {schedule.queue}, {schedule.describe()}) "
                f"{reply.outcome}; {info.status.value}"
                + (f", next fire {format_time(info.next_fire)}" if info.next_fire else "")
            )

    @admin_command(schedules, "remove")
    @click.argument("schedule_id")
    @queue_option
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
    @actor_option
    def remove(
        schedule_id: str, queue: str | None, yes: bool, actor: str | None, as_json: bool
    ) -> None:
        """Delete a schedule (jobs already enqueued stay). A schedule still
        declared in an app's code comes back when a cron process syncs it."""
        app = get_app()
        try:  # the record is only described, never needed: a damaged one is removed too
            info = app.schedules.get(schedule_id, queue)  # not found: exit 1
            where, what = info.queue, info.schedule.describe()
        except DamagedScheduleError as exc:
            where, what = exc.queue, "damaged record"
        if not yes:
            confirm(
                f"Remove schedule {schedule_id} ({what}) from queue {where}?", "nothing removed"
            )
        removed = app.schedules.remove(schedule_id, where, actor=actor)
        if as_json:
            echo_json({"id": schedule_id, "queue": where, "removed": removed})
        if not removed:
            fail(f"no schedule {schedule_id!r}", 1)
        if not as_json:
            click.echo(f"schedule {schedule_id} removed from queue {where}")

    def _toggle(
        schedule_id: str, queue: str | None, pause: bool, actor: str | None, as_json: bool
    ) -> None:
        app = get_app()
        store = app.schedules
        toggle = store.pause if pause else store.resume
        changed = toggle(schedule_id, queue, actor=actor)
        info = store.get(schedule_id, queue)
        if as_json:
            echo_json({"changed": changed, "schedule": schedule_to_dict(info)})
        if not changed:
            fail(f"schedule {schedule_id} is already {info.status.value}", 1)
        if not as_json:
            click.echo(f"schedule {schedule_id} (queue {info.queue}) is now {info.status.value}")

    @admin_command(schedules, "pause")
    @click.argument("schedule_id")
    @queue_option
    @actor_option
    def pause(schedule_id: str, queue: str | None, actor: str | None, as_json: bool) -> None:
        """Pause a schedule: nothing fires until it is resumed."""
        _toggle(schedule_id, queue, True, actor, as_json)

    @admin_command(schedules, "resume")
    @click.argument("schedule_id")
    @queue_option
    @actor_option
    def resume(schedule_id: str, queue: str | None, actor: str | None, as_json: bool) -> None:
        """Resume a paused schedule at its next fire time (firings due while it
        was paused are not run)."""
        _toggle(schedule_id, queue, False, actor, as_json)

    @admin_command(schedules, "run-now")
    @click.argument("schedule_id")
    @queue_option
    def run_now(schedule_id: str, queue: str | None, as_json: bool) -> None:
        """Enqueue one job of the schedule now, besides its regular firings."""
        app = get_app()
        job = enqueue_schedule_now(app, app.schedules.get(schedule_id, queue))
        if as_json:
            echo_json({"id": job.id, "queue": job.queue, "schedule": schedule_id})
        else:
            click.echo(f"job {job.id} enqueued in queue {job.queue} from schedule {schedule_id}")
