"""``scheduler enqueue TASK``: enqueue a job by task name.

With ``--app module:app`` the app is imported (as ``scheduler worker``
does) and the job is built exactly as the app's own ``enqueue`` builds it:
the task's declared defaults (queue, priority inputs, attempts, lease, ...)
apply, and an unknown task name is refused (exit 2). Without it the task
name cannot be checked: a warning says so on stderr and the library's
defaults apply.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from scheduler import defaults
from scheduler.app import Scheduler
from scheduler.cli.common import admin_command, echo_json, fail, get_app
from scheduler.cli.formats import parse_duration
from scheduler.cli.runtime import load_app
from scheduler.task import EnqueueOptions
from scheduler.validation import validate_task_name

__all__ = ["parse_json_option", "register"]


def parse_json_option(text: str | None, option: str, kind: type) -> Any:
    """Decode ``text`` as JSON of type ``kind`` (list or dict).

    Exits 2 if it is not JSON of that type, is nested deeper than Python's
    JSON decoder goes (about 1,000 levels) or holds a string that is not
    valid Unicode (a lone surrogate such as ``"\\ud800"``, which cannot be
    stored as UTF-8).
    """
    if text is None:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{option} is not valid JSON: {exc}", 2)
    except RecursionError:
        fail(f"{option} is nested too deeply", 2)
    if not isinstance(value, kind):
        expected = "array" if kind is list else "object"
        fail(f"{option} must be a JSON {expected}, got {type(value).__name__}", 2)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        fail(f"{option} holds a string that is not valid Unicode (a lone surrogate)", 2)
    except RecursionError:
        fail(f"{option} is nested too deeply", 2)
    return value


def _parse_at(text: str) -> datetime:
    """``--at``: an ISO 8601 time (no offset = local time) in the calendar's range."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at: {text!r} is not an ISO 8601 time (e.g. 2030-01-02T03:04:05+00:00)", 2)
    try:
        when.astimezone(UTC).timestamp()  # year 1 in local time can fall before year 1 UTC
    except (ValueError, OverflowError, OSError):
        fail(f"--at: {text!r} is out of range", 2)
    return when


def _producer(app_path: str | None, task: str) -> Scheduler:
    """The app to enqueue with: the imported ``--app`` (its connection, prefix,
    tasks and defaults; an unknown task exits 2), else the ``--url``/``--prefix``
    one (the caller warns that ``task`` was not checked)."""
    validate_task_name(task)
    if app_path is None:
        return get_app()
    try:
        app = load_app(app_path)
    except click.UsageError as exc:
        fail(exc.format_message(), 2)
    if task not in app.tasks:
        known = ", ".join(sorted(app.tasks)) or "none"
        fail(f"app {app_path} has no task {task!r} (its tasks: {known})", 2)
    click.get_current_context().call_on_close(app.close)
    return app


def register(cli: click.Group) -> None:
    """Add ``enqueue`` to ``cli``."""

    @admin_command(cli, "enqueue")
    @click.argument("task")
    @click.option("--args", "args_json", default=None, help="Positional arguments, a JSON array.")
    @click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments, a JSON object.")
    @click.option("-q", "--queue", default=None, help=f"Queue [default: {defaults.QUEUE!r}].")
    @click.option("--job-id", default=None, help="Job id; an existing id is left as it is.")
    @click.option("--delay", default=None, help="Run no earlier than this from now: 30, 5m, 2h.")
    @click.option("--at", "at", default=None, help="ETA, ISO 8601 (no offset = local time).")
    @click.option("-p", "--priority", type=float, default=None, help="Explicit priority.")
    @click.option("--weight", type=float, default=None, help="Priority input weight (>= 0).")
    @click.option("--time", type=float, default=None, help="Priority input: estimated seconds.")
    @click.option("--resource", type=float, default=None, help="Priority input resource (> 0).")
    @click.option(
        "--max-attempts",
        type=int,
        default=None,
        help=f"Leases before dead [{defaults.MAX_ATTEMPTS}].",
    )
    @click.option(
        "--lease", default=None, help=f"Lease duration (visibility timeout) [{defaults.LEASE:g}s]."
    )
    @click.option("--meta", "meta_json", default=None, help="Metadata kept with the job (JSON).")
    @click.option(
        "--app",
        "app_path",
        default=None,
        help="Import this app (module:app) to check TASK and apply its declared "
        "defaults; the app's own connection and prefix are used.",
    )
    def enqueue(
        task: str,
        args_json: str | None,
        kwargs_json: str | None,
        queue: str | None,
        job_id: str | None,
        delay: str | None,
        at: str | None,
        priority: float | None,
        weight: float | None,
        time: float | None,
        resource: float | None,
        max_attempts: int | None,
        lease: str | None,
        meta_json: str | None,
        app_path: str | None,
        as_json: bool,
    ) -> None:
        """Enqueue a job of TASK (its registered name, e.g. 'myapp.tasks:resize').

        Priority is --priority, or weight * time / resource from the inputs
        given (others default to 1). With --app module:app the task's
        declared defaults apply and an unknown task is refused; without it
        the name cannot be checked (a warning says so) and the library's
        defaults, shown below, apply unless given.
        """
        if delay is not None and at is not None:
            fail("give either --delay or --at, not both", 2)
        formula = (weight, time, resource)
        if priority is not None and any(v is not None for v in formula):
            fail("give either --priority or --weight/--time/--resource, not both", 2)
        args = parse_json_option(args_json, "--args", list)
        kwargs = parse_json_option(kwargs_json, "--kwargs", dict)
        meta = parse_json_option(meta_json, "--meta", dict) if meta_json is not None else None
        options = EnqueueOptions(
            queue=queue,
            job_id=job_id,
            delay=parse_duration(delay, "--delay") if delay is not None else None,
            eta=_parse_at(at) if at is not None else None,
            priority=priority,
            weight=weight,
            time=time,
            resource=resource,
            max_attempts=max_attempts,
            lease=parse_duration(lease, "--lease") if lease is not None else None,
            meta=meta,
        )
        app = _producer(app_path, task)
        job = app.enqueue(task, args, kwargs, options=options)
        if app_path is None:
            click.echo(
                f"warning: task {task!r} was not checked (no --app module:app given); "
                "the library's defaults applied, not the task's",
                err=True,
            )
        info = job.info()
        if as_json:
            echo_json(
                {
                    "id": job.id,
                    "queue": job.queue,
                    "task": info.task,
                    "state": info.state.value,
                    "priority": info.priority,
                    "eta": info.ready_at.isoformat(),
                }
            )
        else:
            click.echo(
                f"job {job.id} in queue {job.queue}: {info.state.value}, "
                f"priority {info.priority:g}"
                + (f", ETA {info.ready_at.isoformat()}" if info.state.value == "delayed" else "")
            )
