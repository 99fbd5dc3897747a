"""``scheduler jobs list`` and ``scheduler job show|cancel|retry|reprioritize|run-now``.

Every change goes through the job's Lua script (via :class:`scheduler.Job`).
A change that does not apply (e.g. cancelling a finished job) exits 1 with
the reason; an unknown job id exits 1; a malformed one exits 2; a job whose
record cannot be read (damaged in Redis) exits 1 naming what is wrong.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

import attrs
import click
from rich.table import Table
from rich.text import Text

from scheduler import defaults
from scheduler.admin import LISTABLE_STATES, list_jobs
from scheduler.admin.jobs import FINISHED_STATES
from scheduler.app import Scheduler
from scheduler.backend.progress import Progress
from scheduler.backend.record import JobState
from scheduler.cli.common import (
    MAX_INDEX,
    actor_option,
    admin_command,
    console,
    echo_json,
    fail,
    get_app,
)
from scheduler.cli.formats import format_age, format_time
from scheduler.cli.tables import Column, FitTable
from scheduler.errors import JobNotFoundError, SchedulerError
from scheduler.job import Job, JobInfo
from scheduler.timeutil import ms_to_datetime

__all__ = ["register"]

F = TypeVar("F", bound=Callable[..., Any])

_WHEN_COLUMN = {
    "ready": "ready since",
    "delayed": "ETA",
    "failed": "retry ETA",
    "leased": "lease deadline",
    "dead": "died",
    "succeeded": "finished",
    "cancelled": "cancelled",
    "done": "finished",
}


#: Listings that show the last error.
_ERROR_STATES = ("failed", "dead", "cancelled", "done", "ready")


def _when(info: JobInfo, state: str) -> datetime | None:
    if state in ("ready", "delayed", "failed"):
        return info.ready_at
    if state == "leased":
        return info.lease_deadline
    return info.finished_at


def _running_for(info: JobInfo, now: datetime) -> str:
    """How long a leased job's attempt has been running (server clock), or
    why it is not: "-" when not leased, "not started" while buffered."""
    if info.state is not JobState.LEASED:
        return "-"
    if info.started_at is None:
        return "not started (prefetched)"
    return format_age((now - info.started_at).total_seconds())


def _first_line(text: str, width: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _record_errors(fn: F) -> F:
    """A ``job ...`` command on a record that cannot be decoded (a damaged
    field, an unknown state or version, a time out of range) exits 1 with
    one line naming the job and the fault, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SchedulerError:  # not found, invalid input: the usual handling
            raise
        except (ValueError, KeyError, OverflowError, TypeError) as exc:
            where = f" in queue {kwargs['queue']}" if kwargs.get("queue") else ""
            fail(
                f"job {kwargs.get('job_id')!r}{where} has a damaged record that cannot be "
                f"read ({type(exc).__name__}: {exc})",
                1,
            )

    return cast(F, wrapper)


def _job(app: Scheduler, job_id: str, queue: str | None) -> Job:
    return app.job(job_id, queue)


def _action_result(
    job: Job, action: str, changed: bool, as_json: bool, why: str, made: JobState | None = None
) -> None:
    """Print an action's outcome. A change reports the state the action put
    the job in (``made``), not a state read afterwards: a worker waiting in
    BLPOP leases a retried or promoted job inside Redis before this process
    could read it again. Without a change (or without ``made``) the job's
    state is read, to say why nothing was done."""
    if changed and made is not None:
        state = made.value
    else:
        try:
            state = job.status.value
        except JobNotFoundError:  # its record expired right away (result TTL 0)
            state = "gone"
    if as_json:
        echo_json(
            {"id": job.id, "queue": job.queue, "action": action, "changed": changed, "state": state}
        )
    if not changed:
        fail(f"job {job.id} is {state}: {why}", 1)
    if not as_json:
        click.echo(f"{action}: job {job.id} (queue {job.queue}) is now {state}")


def _estimate_rows(info: JobInfo) -> list[tuple[str, Any]]:
    """The "learned time" row of a job whose time was "auto"."""
    e = info.record.estimate
    if e is None or info.inputs is None:
        return []
    if e.learned:
        how = (
            f"time={info.inputs[1]!r}s = mean {e.mean_s!r}s * (1 + alpha {e.alpha!r}"
            f" * cv {e.cv!r}) over {e.runs} runs"
        )
    else:
        how = f"fallback time {info.inputs[1]!r}s: {e.runs} of {e.min_samples} runs seen"
    return [("learned time", how)]


def _progress_text(progress: Progress | None) -> str:
    if progress is None:
        return "-"
    value = "" if progress.value is None else f"{progress.value:.0%} "
    return f"{value}{progress.message}".strip() or "-"


def _show(info: JobInfo, now: datetime, progress: Progress | None = None) -> None:
    out = console()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    inputs = info.inputs
    rows: list[tuple[str, Any]] = [
        ("id", info.id),
        ("queue", info.queue),
        ("task", info.task),
        ("state", info.state.value),
        ("args", json.dumps(info.args, ensure_ascii=False)),
        ("kwargs", json.dumps(info.kwargs, ensure_ascii=False)),
        ("priority", repr(info.priority)),
        (
            "priority inputs",
            f"weight={inputs[0]!r} time={inputs[1]!r}s resource={inputs[2]!r}"
            if inputs
            else "(explicit priority)",
        ),
        *_estimate_rows(info),
        ("attempts", f"{info.attempts} of {info.max_attempts}"),
        ("enqueued", format_time(info.enqueued_at, now)),
        ("ETA / ready at", format_time(info.ready_at, now)),
        ("lease deadline", format_time(info.lease_deadline, now)),
        ("running for", _running_for(info, now)),
        ("progress", _progress_text(progress)),
        ("worker", info.worker or "-"),
        ("finished", format_time(info.finished_at, now)),
        ("meta", json.dumps(info.meta, ensure_ascii=False) if info.meta else "-"),
    ]
    if info.state is JobState.SUCCEEDED:
        rows.append(("result", json.dumps(info.result, ensure_ascii=False)))
    if info.error:
        rows.append(("error", str(info.error.get("error", ""))))
        rows.append(("error type", str(info.error.get("type", "")) or "-"))
        rows.append(("failed attempt", str(info.error.get("attempt", "")) or "-"))
    for name, value in rows:
        table.add_row(name, Text(str(value)))
    out.print(table)
    tb = str((info.error or {}).get("traceback", "") or "")
    if tb:
        out.print(Text("traceback:", style="bold"))
        out.print(Text(tb.rstrip()))


def register(cli: click.Group) -> None:  # noqa: C901 -- one small nested function per click command, counted together
    """Add the ``jobs`` and ``job`` command groups to ``cli``."""

    @cli.group("jobs")
    def jobs() -> None:
        """List jobs."""

    @admin_command(jobs, "list")
    @click.option("-q", "--queue", required=True, help="Queue name.")
    @click.option(
        "-s",
        "--state",
        type=click.Choice(LISTABLE_STATES),
        default="ready",
        show_default=True,
        help="ready: run order; delayed/failed: by ETA; leased: by lease deadline; "
        "dead/succeeded/cancelled/done (= succeeded or cancelled): by time finished, "
        "newest first.",
    )
    @click.option(
        "-n",
        "--limit",
        type=click.IntRange(min=1, max=MAX_INDEX),
        default=defaults.LIST_LIMIT,
        show_default=True,
    )
    @click.option(
        "--offset",
        type=click.IntRange(min=0, max=MAX_INDEX),
        default=0,
        help="Skip this many first.",
    )
    @click.option(
        "--oldest",
        is_flag=True,
        help="Finished states: oldest first [default: newest first].",
    )
    def list_command(
        queue: str, state: str, limit: int, offset: int, oldest: bool, as_json: bool
    ) -> None:
        """Jobs of a queue in one state, in the order that matters for it
        (finished jobs newest first unless --oldest)."""
        app = get_app()
        reverse = state in FINISHED_STATES and not oldest
        infos = list_jobs(app.backend, queue, state, limit=limit, offset=offset, reverse=reverse)
        if as_json:
            echo_json({"queue": queue, "state": state, "jobs": [i.to_dict() for i in infos]})
            return
        now = ms_to_datetime(app.backend.server_time_ms())
        # Ids, names and numbers are never wrapped or cut (an id must copy
        # whole into `job show`); the time and the error wrap, and the
        # least useful columns go first on a narrow terminal.
        columns = [
            Column("#", 5, "right"),
            Column("id"),
            Column("task", 1),
            Column("priority", 3, "right"),
            Column("attempts", 4, "right"),
            Column(_WHEN_COLUMN[state], 2, wrap=True),
        ]
        if state == "leased":
            columns.append(Column("running for", 2))
            columns.append(Column("worker", 3))
        if state in _ERROR_STATES:
            columns.append(Column("last error", 2, wrap=True))
        rows = []
        for n, info in enumerate(infos, start=offset + 1):
            row = [
                str(n),
                info.id,
                info.task,
                f"{info.priority:g}",
                f"{info.attempts}/{info.max_attempts}",
                format_time(_when(info, state), now),
            ]
            if state == "leased":
                row.append(_running_for(info, now))
                row.append(info.worker or "-")
            if state in _ERROR_STATES:
                row.append(_first_line(str((info.error or {}).get("error", ""))))
            rows.append(row)
        table = FitTable(f"{state} jobs in {queue}", columns, rows)
        out = console()
        out.print(table)
        if len(infos) == limit:
            out.print(f"(first {limit} shown; use --limit/--offset for more)")

    @cli.group("job")
    def job() -> None:
        """Inspect or change one job."""

    queue_option = click.option(
        "-q", "--queue", default=None, help="The job's queue (default: search every queue)."
    )

    @admin_command(job, "show")
    @click.argument("job_id")
    @queue_option
    @_record_errors
    def show(job_id: str, queue: str | None, as_json: bool) -> None:
        """Every field of a job: task, args, priority and its inputs, attempts,
        ETA, lease deadline, worker, error and traceback, result."""
        app = get_app()
        handle = _job(app, job_id, queue)
        info = handle.info()
        progress = handle.progress
        if as_json:
            shown = info.to_dict()
            shown["progress"] = None if progress is None else attrs.asdict(progress)
            echo_json(shown)
        else:
            _show(info, ms_to_datetime(app.backend.server_time_ms()), progress)

    @admin_command(job, "cancel")
    @click.argument("job_id")
    @queue_option
    @click.option("--reason", default="cancelled by operator", show_default=True)
    @actor_option
    @_record_errors
    def cancel(
        job_id: str, queue: str | None, reason: str, actor: str | None, as_json: bool
    ) -> None:
        """Cancel a waiting or leased job (a leased job's result will be refused).
        Undo with `job retry`."""
        j = _job(get_app(), job_id, queue)
        changed = j.cancel(reason, actor=actor)
        _action_result(j, "cancelled", changed, as_json, "already finished", JobState.CANCELLED)

    @admin_command(job, "retry")
    @click.argument("job_id")
    @queue_option
    @actor_option
    @_record_errors
    def retry(job_id: str, queue: str | None, actor: str | None, as_json: bool) -> None:
        """Run a dead, cancelled, succeeded or failed (awaiting retry) job again now."""
        j = _job(get_app(), job_id, queue)
        changed = j.retry(actor=actor)
        why = "only dead, cancelled, succeeded or failed jobs"
        _action_result(j, "retried", changed, as_json, why, JobState.READY)

    @admin_command(job, "reprioritize")
    @click.argument("job_id")
    @queue_option
    @click.option("-p", "--priority", type=float, default=None, help="Explicit priority.")
    @click.option("--weight", type=float, default=None, help="Formula input weight (>= 0).")
    @click.option(
        "--time", type=float, default=None, help="Formula input: estimated seconds (> 0)."
    )
    @click.option("--resource", type=float, default=None, help="Formula input resource (> 0).")
    @actor_option
    @_record_errors
    def reprioritize(
        job_id: str,
        queue: str | None,
        priority: float | None,
        weight: float | None,
        time: float | None,
        resource: float | None,
        actor: str | None,
        as_json: bool,
    ) -> None:
        """Change a waiting job's priority: --priority P, or new formula inputs
        (priority = weight * time / resource; inputs not given keep the job's
        current values, or 1)."""
        formula = (weight, time, resource)
        if priority is None and all(v is None for v in formula):
            fail("give --priority, or --weight/--time/--resource", 2)
        if priority is not None and any(v is not None for v in formula):
            fail("give either --priority or --weight/--time/--resource, not both", 2)
        j = _job(get_app(), job_id, queue)
        if priority is not None:
            changed = j.reprioritize(priority, actor=actor)
        else:
            current = j.info().inputs or (1.0, 1.0, 1.0)
            changed = j.reprioritize(
                weight=current[0] if weight is None else weight,
                time=current[1] if time is None else time,
                resource=current[2] if resource is None else resource,
                actor=actor,
            )
        _action_result(j, "reprioritized", changed, as_json, "only waiting jobs can change")

    @admin_command(job, "run-now")
    @click.argument("job_id")
    @queue_option
    @actor_option
    @_record_errors
    def run_now(job_id: str, queue: str | None, actor: str | None, as_json: bool) -> None:
        """Promote a delayed job (or a failed one awaiting its retry ETA) to ready now."""
        j = _job(get_app(), job_id, queue)
        changed = j.run_now(actor=actor)
        why = "only delayed jobs can be promoted"
        _action_result(j, "promoted", changed, as_json, why, JobState.READY)
