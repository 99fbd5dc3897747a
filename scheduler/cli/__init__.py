"""The ``scheduler`` command line (also ``python -m scheduler``)."""

from scheduler.cli.main import cli, main

__all__ = ["cli", "main"]
