"""``scheduler cron``: run a cron process (fires cron and interval schedules)."""

from __future__ import annotations

import logging

import click

from scheduler import defaults
from scheduler.cli.runtime import (
    load_app,
    log_format_option,
    log_level_option,
    run_or_exit,
    setup_logging,
    split_list,
)
from scheduler.errors import ValidationError

__all__ = ["cron_command"]


@click.command("cron")
@click.argument("app_path", metavar="APP_IMPORT_PATH")
@click.option(
    "-q",
    "--queues",
    default=None,
    help="Comma-separated queues whose schedules to fire [default: every registered queue].",
)
@click.option(
    "--sync/--no-sync",
    default=True,
    show_default=True,
    help="Upsert the schedules the app declares in code before starting.",
)
@click.option(
    "--max-block",
    type=click.FloatRange(min=0.1),
    default=defaults.MAX_BLOCK,
    show_default=True,
    help="Longest single wait on Redis, seconds (changes wake it earlier).",
)
@log_level_option
@log_format_option
def cron_command(
    app_path: str, queues: str | None, sync: bool, max_block: float, log_level: str, log_format: str
) -> None:
    """Fire the cron and interval schedules of the app at APP_IMPORT_PATH.

    Run as many as you like: each firing is enqueued exactly once. The
    process sleeps until the next fire time (woken early when a schedule
    changes). SIGTERM/SIGINT stop it.

    Start-up waits for Redis (retried with backoff, one line per attempt);
    wrong credentials, an ACL denial or a declared schedule that cannot be
    stored print one line and exit 1.
    """
    from scheduler.cron import CronRunner

    setup_logging(log_level, log_format)
    app = load_app(app_path, wait_for_redis=True)
    names = split_list(queues) or None
    try:
        runner = CronRunner(app, names, sync=sync, max_block=max_block)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    runner.install_signal_handlers()
    run_or_exit(runner.run)
    logging.shutdown()
