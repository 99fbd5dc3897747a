"""``scheduler workers`` and ``scheduler events [--follow]``."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from scheduler.admin import Event, follow_events, list_workers, recent_events, stream_position
from scheduler.cli.common import (
    MAX_INDEX,
    admin_command,
    console,
    echo_json,
    format_age,
    get_app,
    queue_name_option,
)

__all__ = ["format_event", "register"]


def format_event(event: Event) -> str:
    """One line per event: time, queue, event, job id, detail."""
    stamp = event.time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    detail = f"  {event.detail}" if event.detail else ""
    return f"{stamp}  {event.queue}  {event.event:<13} {event.job}{detail}"


def _print_event(event: Event, as_json: bool) -> None:
    line = json.dumps(event.to_dict(), ensure_ascii=False) if as_json else format_event(event)
    click.echo(line)


def register(cli: click.Group) -> None:
    """Add ``workers`` and ``events`` to ``cli``."""

    @admin_command(cli, "workers")
    @click.option(
        "-q",
        "--queue",
        default=None,
        callback=queue_name_option,
        help="Only workers serving this queue.",
    )
    def workers(queue: str | None, as_json: bool) -> None:
        """Live workers: host, pid, queues, concurrency, in-flight jobs, last
        heartbeat. A worker that stops heartbeating disappears within 30 s."""
        found = list_workers(get_app().backend, queue)
        if as_json:
            echo_json({"workers": [w.to_dict() for w in found]})
            return
        now = time.time()
        table = Table(title=f"{len(found)} live worker(s)", title_justify="left")
        for name in ("id", "host", "pid", "queues", "pool"):
            table.add_column(name, overflow="fold")
        for name in ("concurrency", "in flight", "processed", "last heartbeat", "up"):
            table.add_column(name, justify="right")
        for w in found:
            table.add_row(
                w.id,
                w.host,
                str(w.pid or "-"),
                ",".join(w.queues),
                w.pool or "-",
                str(w.concurrency or "-"),
                str(w.inflight),
                str(w.processed),
                format_age(max(0.0, now - w.last_beat)) + " ago",
                format_age(now - w.started) if w.started else "-",
            )
        console().print(table)

    @admin_command(cli, "events")
    @click.option("-q", "--queue", "queues", multiple=True, help="Only this queue (repeatable).")
    @click.option(
        "-n",
        "--count",
        type=click.IntRange(min=0, max=MAX_INDEX),
        default=20,
        show_default=True,
        help="Recent events shown first.",
    )
    @click.option("-f", "--follow", is_flag=True, help="Keep printing new events until Ctrl-C.")
    def events(queues: tuple[str, ...], count: int, follow: bool, as_json: bool) -> None:
        """Job events (enqueued, leased, succeeded, failed/retried, dead,
        cancelled, expired, ...) from the queues' bounded event streams.

        With --json, one JSON object per line."""
        backend = get_app().backend
        names = list(queues) or None
        for name in names or []:
            backend.queue(name)  # validate before printing anything
        since = stream_position(backend)  # before reading: nothing falls between
        shown = recent_events(backend, names, count) if count else []
        for event in shown:
            _print_event(event, as_json)
        if not follow:
            return
        after = {}
        for event in shown:
            after[event.queue] = event.id
        try:
            for event in follow_events(backend, names, after=after, since=since):
                _print_event(event, as_json)
        except KeyboardInterrupt:
            pass
