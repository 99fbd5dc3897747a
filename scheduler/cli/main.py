"""The ``scheduler`` command group and its shared options."""

from __future__ import annotations

import logging
import sys

import click

from scheduler.cli.worker import worker_command

__all__ = ["cli", "main", "setup_logging"]


def setup_logging(level: str) -> None:
    """Configure stdlib logging for CLI commands (one line per record)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scheduler")
def cli() -> None:
    """scheduler: a priority job scheduler on Redis.

    Run workers with `scheduler worker module:app`; see each command's --help.
    """


cli.add_command(worker_command)


def main() -> None:
    """Entry point of the ``scheduler`` console script."""
    cli(prog_name="scheduler")
