"""``scheduler tasks``: the learned run times of each task, per queue
(statistics kept by ``lua/complete.lua``; :mod:`scheduler.learning`)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from scheduler.cli.common import admin_command, console, echo_json, get_app
from scheduler.cli.formats import format_time
from scheduler.cli.tables import Column, FitTable

__all__ = ["register"]


def register(cli: click.Group) -> None:
    """Add ``tasks`` to ``cli``."""

    @admin_command(cli, "tasks")
    @click.option("-q", "--queue", "queues", multiple=True, help="Only this queue (repeatable).")
    def tasks(queues: tuple[str, ...], as_json: bool) -> None:
        """Per queue and task: successful runs measured, mean and standard
        deviation of the run time (server clock, start to finish; exact for
        the first 100 runs, then exponentially weighted), the coefficient of
        variation, and the last run."""
        app = get_app()
        backend = app.backend
        names = list(queues) or backend.queue_names()
        rows: list[dict[str, object]] = []
        for q in names:
            for s in backend.task_stats(q):
                rows.append({"queue": q, **s.to_dict()})
        if as_json:
            echo_json({"tasks": rows})
            return
        now = datetime.now(UTC)
        table_rows = [
            [
                str(r["queue"]),
                str(r["task"]),
                str(r["runs"]),
                f"{r['mean_s']:.3f}s",
                f"{r['sd_s']:.3f}s",
                f"{r['cv']:.2f}",
                f"{r['last_duration_s']:.3f}s",
                format_time(
                    datetime.fromtimestamp(float(str(r["last_finished_ms"])) / 1000, UTC), now
                ),
            ]
            for r in rows
        ] or [["(no measured runs)", "", "", "", "", "", "", ""]]
        columns = [
            Column("queue"),
            Column("task"),
            Column("runs", 0, "right"),
            Column("mean", 0, "right"),
            Column("sd", 1, "right"),
            Column("cv", 2, "right"),
            Column("last run", 3, "right"),
            Column("last finished", 4, "right"),
        ]
        console().print(FitTable("tasks", columns, table_rows))
