"""``scheduler metrics``: the standalone Prometheus exporter.

Serves every queue's depth, oldest ready age, counters and the live workers
from Redis (:mod:`scheduler.metrics.exporter`) with no worker running, until
SIGINT/SIGTERM (exit 0).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import click

from scheduler import defaults
from scheduler.cli.common import admin_command, fail, get_app

__all__ = ["register"]


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def register(cli: click.Group) -> None:
    """Add ``metrics`` to ``cli``."""

    @admin_command(cli, "metrics", json_output=False)
    @click.option(
        "--port",
        type=click.IntRange(min=0, max=65535),
        default=defaults.METRICS_PORT,
        show_default=True,
        help="TCP port (0 picks a free one, printed at start).",
    )
    @click.option(
        "--addr",
        default=defaults.METRICS_ADDR,
        show_default=True,
        help="Address to bind (0.0.0.0 serves other hosts).",
    )
    @click.option(
        "-q",
        "--queue",
        "queues",
        multiple=True,
        help="Only this queue (repeatable) [default: every registered queue].",
    )
    @click.option(
        "--interval",
        type=click.FloatRange(min=0.1, max=3600.0),
        default=5.0,
        show_default=True,
        help="Seconds between reads of Redis.",
    )
    def metrics(port: int, addr: str, queues: tuple[str, ...], interval: float) -> None:
        """Serve Prometheus metrics of the queues from Redis, with no worker
        needed: depth per state, oldest ready age, paused, cumulative
        counters (dead-letter, lease expiries, ...), live workers, running
        and buffered jobs. Runs until Ctrl-C / SIGTERM."""
        try:
            from scheduler.metrics import start_exporter
        except ImportError:  # pragma: no cover -- the optional extra is missing
            fail("metrics need prometheus-client: pip install 'redis-priority-scheduler[metrics]'")
        backend = get_app().backend
        for name in queues:
            backend.queue(name)  # a malformed name: exit 2 before serving
        backend.server_time_ms()  # fail now (exit 1) if Redis cannot be reached
        try:
            exporter = start_exporter(
                backend, port, addr=addr, queues=list(queues) or None, interval=interval
            )
        except OSError as exc:
            fail(f"cannot serve metrics on {addr}:{port}: {exc}", 1)
        try:
            click.echo(
                f"serving queue metrics on http://{exporter.address}:{exporter.port}/metrics "
                "(Ctrl-C to stop)"
            )
            _wait_for_signal()
        finally:
            exporter.close()
