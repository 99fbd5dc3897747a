"""``scheduler queue limit``: concurrency and rate limits of a queue or of a
task in it (through ``lua/queue_limit.lua``, via :meth:`Scheduler.set_limits`),
and the limit and capacity notes ``scheduler status`` prints under its table."""

from __future__ import annotations

from typing import Any

import click

from scheduler.admin.capacity import oversized_jobs
from scheduler.backend import Backend
from scheduler.cli.common import (
    actor_option,
    admin_command,
    create_option,
    echo_json,
    get_app,
    require_queue,
)

__all__ = ["register", "status_notes"]


def status_notes(backend: Backend, queues: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Lines (and their JSON) for ``scheduler status``: each queue's limits,
    and the ready jobs no live worker has the capacity to run
    (:func:`scheduler.admin.capacity.oversized_jobs`)."""
    lines: list[str] = []
    limits: dict[str, Any] = {}
    for q in queues:
        found = backend.queue_limits(q)
        if not found.empty:
            limits[q] = found.to_dict()
            lines.append(f"limits of {q}: {found.describe()}")
    big = oversized_jobs(backend, queues)
    for job in big[:20]:
        lines.append(
            f"job {job.job_id} in {job.queue} needs {job.resource:g} units, more than any live "
            f"worker's capacity ({job.largest_capacity:g}): it will not run"
        )
    if len(big) > 20:
        lines.append(f"... and {len(big) - 20} more such jobs")
    oversized = [
        {
            "queue": j.queue,
            "id": j.job_id,
            "resource": j.resource,
            "largest_capacity": j.largest_capacity,
        }
        for j in big
    ]
    return lines, {"limits": limits, "oversized": oversized}


def register(cli: click.Group) -> None:
    """Add ``limit`` to the ``queue`` group of ``cli`` (registered before)."""
    group = cli.commands["queue"]
    assert isinstance(group, click.Group)

    @admin_command(group, "limit")
    @click.argument("name")
    @click.option("--task", default=None, help="Limit this task of the queue, not the whole queue.")
    @click.option(
        "--concurrency", default=None, help="Leases held at once (an int >= 1), or 'none'."
    )
    @click.option(
        "--rate", default=None, help="Leases per period, e.g. 100/m, 20/2s, 5/h, or 'none'."
    )
    @create_option
    @actor_option
    def limit(
        name: str,
        task: str | None,
        concurrency: str | None,
        rate: str | None,
        create: bool,
        actor: str | None,
        as_json: bool,
    ) -> None:
        """Set the concurrency or rate limit of queue NAME (or of --task in it),
        enforced across all workers; with neither option, show the limits.
        A rate is a token bucket: at most N at once, N per period on average."""
        app = get_app()
        require_queue(app, name, create)  # a typo'd name would make a queue nothing serves
        clear_c, clear_r = concurrency == "none", rate == "none"
        conc: int | None = None
        if concurrency is not None and not clear_c:
            try:
                conc = int(concurrency)
            except ValueError:
                raise click.UsageError(
                    f"--concurrency must be an int >= 1 or 'none', got {concurrency!r}"
                ) from None
        if concurrency is None and rate is None:
            limits = app.backend.queue_limits(name)
        else:
            limits = app.set_limits(
                name,
                task=task,
                concurrency=conc,
                rate=None if clear_r else rate,
                clear_concurrency=clear_c,
                clear_rate=clear_r,
                actor=actor,
            )
        if as_json:
            echo_json({"queue": name, **limits.to_dict()})
        else:
            click.echo(f"limits of {name}: {limits.describe()}")
