"""``scheduler workers`` and ``scheduler events [--follow]``."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from scheduler.admin import (
    AUDIT,
    AUDIT_ACTIONS,
    Event,
    WorkerInfo,
    follow_events,
    list_workers,
    recent_events,
    stream_position,
)
from scheduler.admin.events import audit_matches
from scheduler.cli.common import (
    MAX_INDEX,
    admin_command,
    console,
    echo_json,
    get_app,
    queue_name_option,
)
from scheduler.cli.formats import format_age, format_stamp

#: Targets of an audit event shown in full; more are counted.
_TARGETS_SHOWN = 3

__all__ = ["format_event", "register"]


def _targets(text: str) -> str:
    ids = [t for t in text.split(",") if t]
    if len(ids) <= _TARGETS_SHOWN:
        return ",".join(ids)
    return ",".join(ids[:_TARGETS_SHOWN]) + f",... (+{len(ids) - _TARGETS_SHOWN})"


def format_event(event: Event, *, utc: bool | None = None) -> str:
    """One line per event: time (with its zone), queue, event, job id,
    detail; an audit event: action, ``by`` actor, jobs touched, targets,
    detail."""
    stamp = format_stamp(event.time, utc=utc)
    detail = f"  {event.detail}" if event.detail else ""
    if event.event == AUDIT:
        targets = f"  {_targets(event.job)}" if event.job else ""
        return (
            f"{stamp}  {event.queue}  audit {event.action} by {event.actor}: "
            f"{event.count} job(s){targets}{detail}"
        )
    return f"{stamp}  {event.queue}  {event.event:<13} {event.job}{detail}"


def _print_event(event: Event, as_json: bool) -> None:
    line = json.dumps(event.to_dict(), ensure_ascii=False) if as_json else format_event(event)
    click.echo(line)


def _workers_table(found: list[WorkerInfo]) -> Table:
    """The ``workers`` table: one row per live worker."""
    now = time.time()
    table = Table(title=f"{len(found)} live worker(s)", title_justify="left")
    for name in ("id", "host", "pid", "queues", "pool"):
        table.add_column(name, overflow="fold")
    for name in ("concurrency", "running", "buffered", "processed", "last heartbeat", "up"):
        table.add_column(name, justify="right")
    for w in found:
        table.add_row(
            w.id,
            w.host,
            str(w.pid or "-"),
            ",".join(w.queues),
            w.pool or "-",
            str(w.concurrency or "-"),
            str(w.running),
            str(w.buffered),
            str(w.processed),
            format_age(max(0.0, now - w.last_beat)) + " ago",
            format_age(now - w.started) if w.started else "-",
        )
    return table


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
        """Live workers: host, pid, queues, concurrency, jobs running and jobs
        leased ahead in its buffer (prefetched, not started), last heartbeat.
        A worker that stops heartbeating disappears within 30 s."""
        found = list_workers(get_app().backend, queue)
        if as_json:
            echo_json({"workers": [w.to_dict() for w in found]})
            return
        console().print(_workers_table(found))

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
    @click.option(
        "-a",
        "--action",
        "actions",
        multiple=True,
        type=click.Choice(AUDIT_ACTIONS),
        help="Only audit events of this operator action (repeatable).",
    )
    @click.option("--audit", is_flag=True, help="Only audit events (every action).")
    def events(
        queues: tuple[str, ...],
        count: int,
        follow: bool,
        actions: tuple[str, ...],
        audit: bool,
        as_json: bool,
    ) -> None:
        """Job events (enqueued, leased, succeeded, retried = a failed attempt
        will run again, rerun = an operator ran a job again, dead, cancelled,
        expired, ...) and audit events (who did what: `audit retry by
        alice@host: 3 job(s)`) from the queues' bounded event streams.

        With --json, one JSON object per line."""
        wanted = set(actions) if actions else (set(AUDIT_ACTIONS) if audit else None)
        _show_events(list(queues) or None, count, follow, wanted, as_json)


def _show_events(
    names: list[str] | None, count: int, follow: bool, wanted: set[str] | None, as_json: bool
) -> None:
    """The ``events`` command: the last ``count`` events, then new ones if ``follow``."""
    backend = get_app().backend
    for name in names or []:
        backend.queue(name)  # validate before printing anything
    since = stream_position(backend)  # before reading: nothing falls between
    shown = recent_events(backend, names, count, actions=wanted) if count else []
    for event in shown:
        _print_event(event, as_json)
    if not follow:
        return
    after = {}
    for event in shown:
        after[event.queue] = event.id
    try:
        for event in follow_events(backend, names, after=after, since=since):
            if audit_matches(event, wanted):
                _print_event(event, as_json)
    except KeyboardInterrupt:
        pass
