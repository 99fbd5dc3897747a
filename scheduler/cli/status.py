"""``scheduler status`` and ``scheduler top``: queues at a glance."""

from __future__ import annotations

import time
from collections.abc import Callable

import click
import redis
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from scheduler.admin import Overview, QueueStatus, overview
from scheduler.cli.common import admin_command, console, echo_json, get_app
from scheduler.cli.formats import format_age, format_stamp
from scheduler.cli.limits import status_notes
from scheduler.cli.tables import Column, FitTable

__all__ = ["register", "render_overview"]


def _oldest(q: QueueStatus) -> str:
    oldest = format_age(q.oldest_ready_age)
    if q.oldest_ready_age is not None and not q.oldest_ready_exact:
        oldest = ">=" + oldest
    return oldest


#: Columns of the status table: header, cell of a queue, priority (the
#: highest numbers are left out first when the terminal is narrow).
_COLUMNS: list[tuple[Column, Callable[[QueueStatus], RenderableType]]] = [
    (Column("queue"), lambda q: q.queue),
    (
        Column("state", 1),
        lambda q: (
            Text("paused", style="bold yellow") if q.paused else Text("active", style="green")
        ),
    ),
    (Column("ready", 0, "right"), lambda q: str(q.ready)),
    (Column("delayed", 3, "right"), lambda q: str(q.delayed)),
    (Column("leased", 2, "right"), lambda q: str(q.leased)),
    (Column("dead", 1, "right"), lambda q: Text(str(q.dead), style="red") if q.dead else "0"),
    (Column("done", 5, "right"), lambda q: str(q.done)),
    (Column("succeeded", 6, "right"), lambda q: str(q.totals.get("succeeded", 0))),
    (Column("damaged", 3, "right"), lambda q: _damaged(q.totals.get("damaged", 0))),
    (Column("oldest ready", 1, "right"), _oldest),
    (Column("jobs/s (1m)", 2, "right"), lambda q: f"{q.jobs_per_s:.2f}"),
    (Column("failed (1m)", 2, "right"), lambda q: _failure(q.failure_rate)),
    (Column("workers", 4, "right"), lambda q: str(q.workers)),
]


def render_overview(view: Overview, *, title: str = "queues") -> RenderableType:
    """The status table (one row per queue) and a summary line.

    Pure function of ``view``: ``status`` prints it once, ``top`` redraws it.
    """
    summary = Text(
        f"{len(view.workers)} live worker(s) running {view.running} job(s), "
        f"{view.buffered} more leased and buffered; "
        f"server time {format_stamp(view.server_time)}; "
        "leased = running + buffered; "
        "succeeded = total since the queue was created, done = succeeded/cancelled kept, "
        "failed (1m) = failed share of the attempts finished in the last minute, "
        "damaged = damaged records moved to dead since the queue was created"
    )
    rows = [[cell(q) for _, cell in _COLUMNS] for q in view.queues]
    if not rows:
        rows = [["(no queues)", *[""] * (len(_COLUMNS) - 1)]]
    return Group(FitTable(title, [c for c, _ in _COLUMNS], rows), summary)


def _failure(rate: float | None) -> Text | str:
    if rate is None:
        return "-"
    shown = f"{rate:.0%}"
    return Text(shown, style="bold red") if rate >= 0.5 else shown


def _damaged(count: int) -> Text | str:
    return Text(str(count), style="bold red") if count else "0"


def register(cli: click.Group) -> None:
    """Add ``status`` and ``top`` to ``cli``."""

    @admin_command(cli, "status")
    @click.option("-q", "--queue", "queues", multiple=True, help="Only this queue (repeatable).")
    def status(queues: tuple[str, ...], as_json: bool) -> None:
        """Per queue: ready, delayed, leased, dead and done counts, succeeded and
        damaged records since the queue was created, the oldest ready job's
        age, paused or not, live workers, jobs/s and the failed share over
        the last minute; and how many leased jobs the workers are running
        versus holding in their prefetch buffers."""
        view = overview(get_app().backend, list(queues) or None)
        notes, extra = status_notes(get_app().backend, [q.queue for q in view.queues])
        if as_json:
            echo_json({**view.to_dict(), **extra})
        else:
            console().print(render_overview(view), *notes, sep="\n")

    @admin_command(cli, "top", json_output=False)
    @click.option("-q", "--queue", "queues", multiple=True, help="Only this queue (repeatable).")
    @click.option(
        "--interval",
        type=click.FloatRange(min=0.1, max=3600.0),
        default=1.0,
        show_default=True,
        help="Seconds between refreshes.",
    )
    @click.option("--iterations", type=click.IntRange(min=0), default=0, hidden=True)
    def top(queues: tuple[str, ...], interval: float, iterations: int) -> None:
        """The status view, refreshed every second until Ctrl-C (a Redis error
        is shown and retried; only the first read must succeed)."""
        backend = get_app().backend
        names = list(queues) or None
        out = console()
        count = 0
        try:
            with Live(
                render_overview(overview(backend, names)), console=out, auto_refresh=False
            ) as live:
                while True:
                    count += 1
                    if iterations and count >= iterations:
                        break
                    time.sleep(interval)
                    try:
                        view: RenderableType = render_overview(overview(backend, names))
                    except (redis.RedisError, OSError) as exc:  # keep trying; Ctrl-C quits
                        view = Text(f"Redis error: {exc}; retrying", style="bold red")
                    live.update(view, refresh=True)
        except KeyboardInterrupt:
            pass
