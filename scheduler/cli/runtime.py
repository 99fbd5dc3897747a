"""What the long-running commands (worker, cron) share: logging, loading the app."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from scheduler.app import Scheduler
from scheduler.loading import import_app

__all__ = ["load_app", "log_level_option", "setup_logging", "split_list"]


def setup_logging(level: str) -> None:
    """Configure stdlib logging for CLI commands (one line per record, stderr)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def log_level_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--log-level`` option (DEBUG, INFO, WARNING, ERROR; default INFO)."""
    return click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        help="Logging level (one line per job state change at INFO).",
    )(fn)


def split_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (empty for None or blank)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def load_app(app_path: str) -> Scheduler:
    """Import the app at ``package.module:attribute``, with the working
    directory on ``sys.path``.

    Raises:
        click.UsageError: it cannot be imported or is not a Scheduler.
    """
    sys.path.insert(0, os.getcwd())
    try:
        return import_app(app_path)
    except (ImportError, AttributeError, ValueError) as exc:
        raise click.UsageError(f"cannot load app {app_path!r}: {exc}") from None
