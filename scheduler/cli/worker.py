"""``scheduler worker``: run a worker process."""

from __future__ import annotations

import logging
import os

import click

from scheduler import defaults
from scheduler.cli.runtime import (
    child_loader,
    load_app,
    log_format_option,
    log_level_option,
    run_or_exit,
    setup_logging,
    split_list,
)
from scheduler.errors import ValidationError
from scheduler.worker import Worker

__all__ = ["worker_command"]


def _weights(value: str | None) -> dict[str, float]:
    result: dict[str, float] = {}
    for part in split_list(value):
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
    help="Comma-separated queues, highest priority first [default: every queue the app's "
    "tasks declare, the app's default queue first].",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    default=defaults.CONCURRENCY,
    show_default=True,
    help="Jobs run at once.",
)
@click.option(
    "--pool",
    type=click.Choice(["thread", "process"]),
    default=defaults.POOL,
    show_default=True,
    help="Thread pool, or process pool for CPU-bound tasks.",
)
@click.option(
    "--queue-order",
    type=click.Choice(["strict", "weighted"]),
    default=defaults.QUEUE_ORDER,
    show_default=True,
    help="strict: earlier queues first; weighted: random order by --weights.",
)
@click.option(
    "--weights", default=None, help="Queue weights for --queue-order weighted, e.g. 'high=5,low=1'."
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    default=None,
    help="Jobs leased ahead beyond --concurrency, so threads never wait for Redis "
    "[default: = concurrency; 0 for long jobs across many workers].",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=defaults.GRACE,
    show_default=True,
    help="Seconds running jobs may finish after SIGTERM/SIGINT before their leases are released.",
)
@click.option(
    "--capacity",
    type=float,
    default=None,
    help="Resource units run at once: only jobs whose resource fits are leased "
    "[default: unlimited]. --backfill-wait S: seconds a job too big for the free "
    f"capacity may be passed by smaller ones (0 = strict) [default: {defaults.BACKFILL_WAIT:g}].",
)
@click.option("--backfill-wait", type=float, default=defaults.BACKFILL_WAIT, hidden=True)
@log_level_option
@log_format_option
@click.option(
    "--with-cron",
    is_flag=True,
    default=False,
    help="Also fire the app's cron/interval schedules, in a thread (see `scheduler cron`).",
)
@click.option(
    "--burst",
    is_flag=True,
    default=False,
    help="Run every ready and due job of the queues, then exit 0 (tests, batch runs).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=None,
    help="Serve Prometheus metrics on this port (needs prometheus-client).",
)
@click.option(
    "--metrics-addr",
    default=defaults.METRICS_ADDR,
    show_default=True,
    help="Address of the metrics server.",
)
def worker_command(
    app_path: str,
    queues: str | None,
    concurrency: int,
    pool: str,
    queue_order: str,
    weights: str | None,
    prefetch: int | None,
    grace: float,
    log_level: str,
    log_format: str,
    metrics_port: int | None,
    metrics_addr: str,
    with_cron: bool,
    capacity: float | None,
    backfill_wait: float,
    burst: bool,
) -> None:
    """Run a worker for the scheduler app at APP_IMPORT_PATH ('package.module:app').

    The worker leases jobs in priority order, runs them, heartbeats their
    leases and reports results. SIGTERM/SIGINT stop leasing and let running
    jobs finish for --grace seconds; a second signal releases them at once.

    Start-up waits for Redis (retried with backoff, one line per attempt);
    wrong credentials or an ACL denial print one line and exit 1.
    """
    setup_logging(log_level, log_format)
    app = load_app(app_path, wait_for_redis=True)
    try:
        worker = Worker(
            app,
            split_list(queues) or None,
            concurrency=concurrency,
            pool=pool,
            app_path=app_path,
            app_loader=child_loader(log_level, log_format),
            queue_order=queue_order,
            queue_weights=_weights(weights),
            grace=grace,
            prefetch=prefetch,
            capacity=capacity,
            backfill_wait=backfill_wait,
        )
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    # Before anything announces the worker: a signal from now on stops it cleanly.
    worker.install_signal_handlers()
    metrics_server = None
    if metrics_port is not None:  # --metrics-port: see scheduler/metrics/
        try:
            from scheduler.metrics import start_metrics_server
        except ImportError:
            raise click.UsageError(
                "--metrics-port needs prometheus-client: "
                "pip install 'redis-priority-scheduler[metrics]'"
            ) from None
        try:
            metrics_server = start_metrics_server(worker, metrics_port, addr=metrics_addr)
        except OSError as exc:
            raise click.ClickException(
                f"cannot serve metrics on port {metrics_port}: {exc}"
            ) from None
        logging.getLogger("scheduler.worker").info(
            "metrics on http://%s:%d/metrics", metrics_addr, metrics_server.port
        )
    cron_runner = None
    if with_cron:  # --with-cron: see scheduler/cron/runner.py
        from scheduler.cron import CronRunner

        cron_runner = CronRunner(app)
        cron_runner.start()
    run_or_exit(worker.run_until_empty if burst else worker.run)
    if cron_runner is not None:
        cron_runner.stop()
        cron_runner.join(timeout=5.0)
    if metrics_server is not None:
        metrics_server.close()
    logging.shutdown()
    # Threads still running released jobs must not keep the process alive.
    os._exit(0)
