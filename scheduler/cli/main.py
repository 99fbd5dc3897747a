"""The ``scheduler`` command group and its shared options."""

from __future__ import annotations

import click

from scheduler import defaults
from scheduler.cli.admin import register_admin_commands
from scheduler.cli.common import CliConfig, SchedulerGroup
from scheduler.cli.cron import cron_command
from scheduler.cli.runtime import setup_logging
from scheduler.cli.web import register as register_web
from scheduler.cli.worker import worker_command

__all__ = ["cli", "main", "setup_logging"]


@click.group(cls=SchedulerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="redis-priority-scheduler")
# -- admin connection options (shared by the admin commands; scheduler/cli/common.py).
# No click envvar/default: click ignores an empty REDIS_URL and would use the
# default silently; common.resolve_setting reads the environment instead.
@click.option(
    "--url",
    default=None,
    help=f"Redis URL of the admin commands [env REDIS_URL; default: {defaults.REDIS_URL}].",
)
@click.option(
    "--prefix",
    default=None,
    help=f"Key prefix of the admin commands [env SCHEDULER_PREFIX; default: {defaults.PREFIX}].",
)
@click.option(
    "--utc",
    is_flag=True,
    default=False,
    help="Show times in UTC [default: local time, with its offset].",
)
@click.pass_context
def cli(ctx: click.Context, url: str | None, prefix: str | None, utc: bool) -> None:
    """scheduler: a priority job scheduler on Redis.

    Run workers with `scheduler worker module:app`; see the queues with
    `scheduler status`; see each command's --help.
    """
    ctx.obj = CliConfig(url=url, prefix=prefix, utc=utc)


cli.add_command(worker_command)
cli.add_command(cron_command)
register_admin_commands(cli)
register_web(cli)


def main() -> None:
    """Entry point of the ``scheduler`` console script."""
    cli(prog_name="scheduler")
