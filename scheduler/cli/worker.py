"""``scheduler worker``: run a worker process."""

from __future__ import annotations

import logging
import os
import sys

import click

from scheduler.errors import ValidationError
from scheduler.worker import Worker
from scheduler.worker.execution import import_app

__all__ = ["worker_command"]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _weights(value: str | None) -> dict[str, float]:
    result: dict[str, float] = {}
    for part in _split(value or ""):
        name, sep, weight = part.partition("=")
        try:
            result[name] = float(weight) if sep else 1.0
        except ValueError:
            raise click.BadParameter(f"bad weight in {part!r}; use queue=NUMBER") from None
    return result


@click.command("worker")
@click.argument("app_path", metavar="APP_IMPORT_PATH")
@click.option(
    "-q",
    "--queues",
    default=None,
    help="Comma-separated queues, highest priority first [default: the app's default queue].",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Jobs run at once.",
)
@click.option(
    "--pool",
    type=click.Choice(["thread", "process"]),
    default="thread",
    show_default=True,
    help="Thread pool, or process pool for CPU-bound tasks.",
)
@click.option(
    "--queue-order",
    type=click.Choice(["strict", "weighted"]),
    default="strict",
    show_default=True,
    help="strict: earlier queues first; weighted: random order by --weights.",
)
@click.option(
    "--weights", default=None, help="Queue weights for --queue-order weighted, e.g. 'high=5,low=1'."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds running jobs may finish after SIGTERM/SIGINT before their leases are released.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def worker_command(
    app_path: str,
    queues: str | None,
    concurrency: int,
    pool: str,
    queue_order: str,
    weights: str | None,
    grace: float,
    log_level: str,
) -> None:
    """Run a worker for the scheduler app at APP_IMPORT_PATH ('package.module:app').

    The worker leases jobs in priority order, runs them, heartbeats their
    leases and reports results. SIGTERM/SIGINT stop leasing and let running
    jobs finish for --grace seconds; a second signal releases them at once.
    """
    from scheduler.cli.main import setup_logging

    setup_logging(log_level)
    sys.path.insert(0, os.getcwd())
    try:
        app = import_app(app_path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise click.UsageError(f"cannot load app {app_path!r}: {exc}") from None
    try:
        worker = Worker(
            app,
            _split(queues) if queues else None,
            concurrency=concurrency,
            pool=pool,
            app_path=app_path,
            queue_order=queue_order,
            queue_weights=_weights(weights),
            grace=grace,
        )
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    worker.install_signal_handlers()
    worker.run()
    logging.shutdown()
    # Threads still running released jobs must not keep the process alive.
    os._exit(0)
