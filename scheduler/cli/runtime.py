"""What the long-running commands (worker, cron) share: logging, loading the app."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
import redis
from pythonjsonlogger.json import JsonFormatter

from scheduler.app import Scheduler
from scheduler.backend.startup import StartupError, permanent_reason
from scheduler.cli.common import DEBUG_ENV, fail, one_line
from scheduler.loading import import_app

log = logging.getLogger("scheduler.cli")

__all__ = [
    "child_loader",
    "load_app",
    "log_format_option",
    "log_level_option",
    "run_or_exit",
    "setup_logging",
    "split_list",
]

T = TypeVar("T")


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure stdlib logging for CLI commands, on stderr.

    ``fmt="text"``: one line per record (``time LEVEL logger: message``; a
    dead job's traceback follows on the next lines). ``fmt="json"``: one JSON
    object per line (python-json-logger) with ``timestamp``, ``level``,
    ``name``, ``message`` and the record's extra fields -- for job lines
    ``job_id``, ``task``, ``queue``, ``attempt``, ``outcome``, ``duration``
    (seconds).
    """
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                timestamp=True,
                rename_fields={"levelname": "level"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def child_loader(level: str, fmt: str = "text") -> Callable[[str], Scheduler]:
    """The app loader of a worker's process-pool children: sets up logging
    as :func:`setup_logging` does in the worker (a spawned child starts with
    none: its tasks' INFO lines were lost, WARNING ones bare text), then
    imports the app (:func:`scheduler.loading.import_app`). Picklable."""
    return functools.partial(_load_in_child, level, fmt)


def _load_in_child(level: str, fmt: str, app_path: str) -> Scheduler:
    setup_logging(level, fmt)
    return import_app(app_path)


def log_level_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--log-level`` option (DEBUG, INFO, WARNING, ERROR; default INFO)."""
    return click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        help="Logging level: INFO has one line per job, WARNING retries and lost "
        "leases, ERROR dead jobs (with the traceback).",
    )(fn)


def log_format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--log-format`` option (text or json; default text)."""
    return click.option(
        "--log-format",
        default="text",
        show_default=True,
        type=click.Choice(["text", "json"], case_sensitive=False),
        help="text: one line per record; json: one JSON object per line "
        "(job lines carry job_id, task, queue, attempt, outcome, duration).",
    )(fn)


def run_or_exit(run: Callable[[], T]) -> T:
    """Run a long-running process's ``run``; a :class:`StartupError` (bad
    credentials, ACL denial, damaged declared schedule) becomes one line on
    stderr and exit code 1, with no traceback."""
    try:
        return run()
    except StartupError as exc:
        logging.shutdown()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)


def split_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (empty for None or blank)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def load_app(app_path: str, *, wait_for_redis: bool = False) -> Scheduler:
    """Import the app at ``package.module:attribute``, with the working
    directory on ``sys.path``.

    ``wait_for_redis`` (long-running processes): an import that fails with a
    transient Redis error -- a Redis Cluster client connects when it is made,
    so ``Scheduler.from_url("redis+cluster://...")`` at module level fails
    while the cluster is down -- is retried with backoff (0.2 s doubling to
    5 s, one log line per attempt), as the worker's own start-up waits for
    Redis (:mod:`scheduler.backend.startup`).

    Raises:
        click.UsageError: it cannot be imported or is not a Scheduler, or
            its code declares something invalid (a ValidationError, e.g. a
            bad schedule): exit 2.
        CliError: its code raised anything else while importing (a
            TypeError, SyntaxError, ...): one line naming it, exit 1
            (``SCHEDULER_DEBUG=1`` lets the traceback through).
    """
    sys.path.insert(0, os.getcwd())
    try:
        if wait_for_redis:
            return _import_waiting_for_redis(app_path)
        return import_app(app_path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise click.UsageError(f"cannot load app {app_path!r}: {exc}") from None
    except Exception as exc:  # the app's own code failed at import: one line, not a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        fail(one_line(f"cannot load app {app_path!r}: {type(exc).__name__}: {exc}"))


def _import_waiting_for_redis(app_path: str) -> Scheduler:
    """:func:`import_app`, again while it fails with a transient Redis error
    (a failed import leaves no module behind, so the next attempt re-runs it)."""
    attempt = 0
    while True:
        try:
            return import_app(app_path)
        except (redis.RedisError, OSError) as exc:
            if permanent_reason(exc) is not None:
                raise
            attempt += 1
            pause = min(5.0, 0.1 * 2**attempt)
            log.warning(
                "app %s: Redis is not ready (%s); retrying in %.1f s (attempt %d)",
                app_path,
                one_line(str(exc)) or type(exc).__name__,
                pause,
                attempt,
            )
            time.sleep(pause)
