"""Logging setup shared by the long-running commands (worker, cron)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

__all__ = ["log_level_option", "setup_logging"]


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
