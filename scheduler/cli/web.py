"""``scheduler web``: serve the dashboard (:mod:`scheduler.web`) with uvicorn.

Needs the ``web`` extra (``pip install 'redis-priority-scheduler[web]'``).
Binds 127.0.0.1 by default; authentication comes from ``SCHEDULER_WEB_TOKEN``
and/or ``SCHEDULER_WEB_USER``/``SCHEDULER_WEB_PASSWORD`` (docs/operating.md,
"Web dashboard").
"""

from __future__ import annotations

import click

from scheduler.cli.common import CliConfig, admin_command, fail, get_app, redact_url
from scheduler.cli.runtime import log_level_option, setup_logging

__all__ = ["register"]


def register(cli: click.Group) -> None:
    """Add the ``web`` command to ``cli``."""

    @admin_command(cli, "web", json_output=False)
    @click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to bind; 0.0.0.0 exposes it to the network (set a token first).",
    )
    @click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
    @click.option("--read-only", is_flag=True, help="Hide and refuse every action.")
    @click.option(
        "--refresh",
        type=click.FloatRange(min=0.5),
        default=5.0,
        show_default=True,
        help="Auto-refresh interval of the overview, seconds.",
    )
    @click.option(
        "--root-path",
        default="",
        help="URL prefix when served behind a reverse proxy under a sub-path, e.g. /scheduler.",
    )
    @log_level_option
    def web(
        host: str, port: int, read_only: bool, refresh: float, root_path: str, log_level: str
    ) -> None:
        """Serve the web dashboard: queues, jobs, workers and schedules."""
        try:
            import uvicorn

            from scheduler.web import WebAuth, create_app
        except ImportError as exc:
            fail(
                f"the dashboard needs the web extra: pip install "
                f"'redis-priority-scheduler[web]' ({exc})",
                1,
            )
        setup_logging(log_level)
        try:
            auth = WebAuth.from_env()
        except ValueError as exc:
            fail(str(exc), 2)
        app = get_app()
        app.backend.server_time_ms()  # fail now, with a clear message, if Redis is unreachable
        dashboard = create_app(app, read_only=read_only, auth=auth, refresh=refresh)
        cfg = click.get_current_context().find_object(CliConfig)
        url = redact_url(cfg.url or "" if cfg else "")
        click.echo(
            f"scheduler dashboard for {url} on http://{host}:{port}{root_path}/"
            + (" (read-only)" if read_only else "")
            + ("" if auth.enabled else " (no authentication)"),
            err=True,
        )
        uvicorn.run(
            dashboard,
            host=host,
            port=port,
            root_path=root_path,
            log_level=log_level.lower(),
            proxy_headers=True,
        )
