"""``scheduler queue pause|resume|aging|purge`` and bulk ``scheduler retry``.

Pause/resume/aging go through the ``queue_config`` script, purge through the
``purge`` script (bounded per call, repeated until nothing is left), bulk
retry through the ``retry`` script in batches. No second implementation.
Each change writes an audit event naming ``--actor``. A queue never used
is refused (exit 1) unless ``--create`` is given; a command that finds
nothing to do (already paused, nothing to purge or retry) exits 1.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scheduler import defaults
from scheduler.admin import RETRYABLE_STATES, job_ids
from scheduler.backend.codes import RetryCode
from scheduler.cli.common import (
    actor_option,
    admin_command,
    confirm,
    create_option,
    echo_json,
    fail,
    get_app,
    nothing_done,
    require_queue,
)
from scheduler.validation import resolve_actor, validate_task_name

__all__ = ["PURGE_BATCH", "PURGE_SETS", "RETRY_BATCH", "register"]

#: Jobs per ``retry`` script call in bulk retry.
RETRY_BATCH = 500

#: Jobs deleted per ``purge`` script call.
PURGE_BATCH = defaults.PURGE_BATCH

#: ``--state`` of ``queue purge`` -> the set the purge script empties.
PURGE_SETS = {
    "ready": "ready",
    "delayed": "delayed",
    "leased": "leased",
    "dead": "dead",
    "done": "done",
}


def _progress(total: int) -> Progress:
    """A progress bar on stderr, shown only for large sets on a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=total < RETRY_BATCH,
        transient=True,
    )


def register(cli: click.Group) -> None:  # noqa: C901 -- one small nested function per click command, counted together
    """Add the ``queue`` group and the bulk ``retry`` command to ``cli``."""

    @cli.group("queue")
    def queue() -> None:
        """Pause, resume, set aging or purge a queue."""

    @admin_command(queue, "pause")
    @click.argument("name")
    @create_option
    @actor_option
    def pause(name: str, create: bool, actor: str | None, as_json: bool) -> None:
        """Stop workers leasing from queue NAME (enqueue, ETAs and lease expiry go on).
        Exits 1 if it was already paused."""
        app = get_app()
        require_queue(app, name, create)
        changed = app.pause(name, actor=actor)
        data = {"queue": name, "paused": True, "changed": changed}
        _report_change(
            changed,
            data,
            as_json,
            done=f"queue {name} paused",
            nothing=f"queue {name} is already paused",
        )

    @admin_command(queue, "resume")
    @click.argument("name")
    @create_option
    @actor_option
    def resume(name: str, create: bool, actor: str | None, as_json: bool) -> None:
        """Let workers lease from queue NAME again. Exits 1 if it was not paused."""
        app = get_app()
        require_queue(app, name, create)
        changed = app.resume(name, actor=actor)
        data = {"queue": name, "paused": False, "changed": changed}
        _report_change(
            changed,
            data,
            as_json,
            done=f"queue {name} resumed",
            nothing=f"queue {name} is not paused",
        )

    @admin_command(queue, "aging")
    @click.argument("name")
    @click.argument("rate", type=float)
    @create_option
    @actor_option
    def aging(name: str, rate: float, create: bool, actor: str | None, as_json: bool) -> None:
        """Set queue NAME's aging RATE: priority units a ready job gains per
        second of waiting (0 = strict priority). Applies to jobs that become
        ready afterwards. Exits 1 if the rate was already RATE."""
        app = get_app()
        require_queue(app, name, create)
        changed = app.set_aging(name, rate, actor=actor)
        data = {"queue": name, "aging": rate, "changed": changed}
        _report_change(
            changed,
            data,
            as_json,
            done=f"queue {name}: aging {rate:g} per second",
            nothing=f"queue {name}'s aging is already {rate:g}",
        )

    @admin_command(queue, "purge")
    @click.argument("name")
    @click.option(
        "-s",
        "--state",
        type=click.Choice(list(PURGE_SETS)),
        required=True,
        help="Which jobs to delete (done = succeeded and cancelled records; "
        "delayed includes failed jobs awaiting retry).",
    )
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
    @create_option
    @actor_option
    def purge(
        name: str, state: str, yes: bool, create: bool, actor: str | None, as_json: bool
    ) -> None:
        """Delete every job of queue NAME in one state. Asks first unless --yes.
        Exits 1 if there was nothing to delete.

        Purged leased jobs' workers are refused when they report."""
        app = get_app()
        require_queue(app, name, create)
        who = resolve_actor(actor)
        qk = app.queue_keys(name)
        total = app.backend.job_set_size(name, PURGE_SETS[state])
        if total == 0:
            nothing_done(
                f"no {state} jobs in queue {name}",
                {"queue": name, "state": state, "deleted": 0},
                as_json,
            )
        if not yes:
            confirm(
                f"Delete {total} {state} job(s) from queue {name}? This cannot be undone",
                "nothing deleted",
            )
        deleted = 0
        with _progress(total) as bar:
            task = bar.add_task(f"purging {state}", total=total)
            while n := app.scripts.purge(qk, PURGE_SETS[state], PURGE_BATCH, actor=who):
                deleted += n
                bar.update(task, completed=min(deleted, total))
        data = {"queue": name, "state": state, "deleted": deleted}
        if deleted == 0:  # emptied by someone else meanwhile
            nothing_done(f"no {state} jobs in queue {name}", data, as_json)
        if as_json:
            echo_json(data)
        else:
            click.echo(f"deleted {deleted} {state} job(s) from queue {name}")

    @admin_command(cli, "retry")
    @click.option("-q", "--queue", required=True, help="Queue name.")
    @click.option(
        "-s",
        "--state",
        type=click.Choice(RETRYABLE_STATES),
        default="dead",
        show_default=True,
        help="Which jobs to run again.",
    )
    @click.option("--all", "all_jobs", is_flag=True, help="Every job in that state.")
    @click.option("--task", default=None, help="Only jobs of this task.")
    @create_option
    @actor_option
    def retry(
        queue: str,
        state: str,
        all_jobs: bool,
        task: str | None,
        create: bool,
        actor: str | None,
        as_json: bool,
    ) -> None:
        """Run many jobs again: every dead job of a queue (--all), or those of one
        task (--task T). Shows a progress bar for large sets. Exits 1 if no
        job was requeued."""
        if all_jobs == (task is not None):
            fail("give exactly one of --all or --task TASK", 2)
        if task is not None:
            validate_task_name(task)
        app = get_app()
        require_queue(app, queue, create)
        who = resolve_actor(actor)
        qk = app.queue_keys(queue)
        ids = job_ids(app.backend, queue, state, task)
        requeued = skipped = gone = 0
        with _progress(len(ids)) as bar:
            progress = bar.add_task(f"retrying {state} jobs", total=len(ids))
            for start in range(0, len(ids), RETRY_BATCH):
                batch = ids[start : start + RETRY_BATCH]
                for code in app.scripts.retry(qk, batch, actor=who):
                    if code == RetryCode.REQUEUED:
                        requeued += 1
                    elif code == RetryCode.NOT_RETRYABLE:
                        skipped += 1
                    else:
                        gone += 1
                bar.advance(progress, len(batch))
        data = {
            "queue": queue,
            "state": state,
            "task": task,
            "matched": len(ids),
            "requeued": requeued,
            "skipped": skipped,
            "gone": gone,
        }
        message = (
            f"requeued {requeued} of {len(ids)} {state} job(s) in queue {queue}"
            + (f" of task {task}" if task else "")
            + (f"; {skipped} had changed state" if skipped else "")
            + (f"; {gone} were gone" if gone else "")
        )
        if requeued == 0:
            nothing_done(message, data, as_json)
        if as_json:
            echo_json(data)
        else:
            click.echo(message)


def _report_change(
    changed: bool, data: dict[str, Any], as_json: bool, *, done: str, nothing: str
) -> None:
    """Print what a queue command did (``done``), or exit 1 with ``nothing``
    when it changed nothing (the JSON is printed either way)."""
    if not changed:
        nothing_done(nothing, data, as_json)
    if as_json:
        echo_json(data)
    else:
        click.echo(done)
