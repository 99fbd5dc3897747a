"""Shared plumbing of the admin commands: connection, output, errors.

* **Connection**: ``--url`` (env ``REDIS_URL``) and ``--prefix`` (env
  ``SCHEDULER_PREFIX``) are accepted on the ``scheduler`` group and on every
  admin command (``scheduler --url X status`` and ``scheduler status --url X``
  both work). Commands build a :class:`scheduler.Scheduler` from them; no
  app import is needed.
* **Output**: rich tables for people; ``--json`` prints one JSON document
  with documented, stable keys (``docs/operating.md``).
* **Exit codes**: 0 ok; 1 not found, nothing done, or Redis failed /
  unreachable; 2 usage (bad option, malformed JSON, invalid name, bad
  priority). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import attrs
import click
import redis
from rich.console import Console

from scheduler import defaults
from scheduler.app import Scheduler
from scheduler.errors import JobNotFoundError, SchedulerError, ValidationError

__all__ = [
    "CliConfig",
    "CliError",
    "CliUsageError",
    "admin_command",
    "console",
    "echo_json",
    "fail",
    "format_age",
    "format_time",
    "get_app",
    "parse_duration",
    "redact_url",
]

F = TypeVar("F", bound=Callable[..., Any])


@attrs.define
class CliConfig:
    """Connection settings of one CLI invocation (``ctx.obj``)."""

    url: str = defaults.REDIS_URL
    prefix: str = defaults.PREFIX
    app: Scheduler | None = None


class CliError(click.ClickException):
    """A one-line error; exit code 1 (failed, not found, Redis unreachable)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file or sys.stderr)


class CliUsageError(CliError):
    """A one-line usage error (bad input); exit code 2."""

    exit_code = 2


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Stop the command with a one-line error and ``exit_code`` (1 or 2)."""
    raise (CliUsageError if exit_code == 2 else CliError)(message)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def config(ctx: click.Context) -> CliConfig:
    """The invocation's :class:`CliConfig` (created with defaults if missing)."""
    return ctx.ensure_object(CliConfig)


def get_app(ctx: click.Context | None = None) -> Scheduler:
    """The :class:`Scheduler` for ``--url``/``--prefix`` (made once per invocation)."""
    ctx = ctx or click.get_current_context()
    cfg = config(ctx)
    if cfg.app is None:
        try:
            cfg.app = Scheduler.from_url(cfg.url, prefix=cfg.prefix)
        except ValidationError:  # invalid --prefix: exit 2 via the command's handler
            raise
        except ValueError as exc:  # redis-py: malformed URL
            fail(f"bad --url {redact_url(cfg.url)!r}: {exc}", 2)
        ctx.call_on_close(cfg.app.close)
    return cfg.app


def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        config(ctx).url = value


def _set_prefix(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        config(ctx).prefix = value


def _handle_errors(fn: F) -> F:
    """Turn expected failures into one-line errors with the right exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except JobNotFoundError as exc:
            fail(str(exc), 1)
        except ValidationError as exc:
            fail(str(exc), 2)
        except redis.AuthenticationError as exc:
            url = redact_url(config(click.get_current_context()).url)
            fail(f"Redis at {url} refused the credentials: {exc}", 1)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            url = redact_url(config(click.get_current_context()).url)
            fail(f"cannot reach Redis at {url}: {exc}", 1)
        except redis.RedisError as exc:
            fail(f"Redis error: {exc}", 1)
        except SchedulerError as exc:
            fail(str(exc), 1)

    return cast(F, wrapper)


def admin_command(
    group: click.Group, name: str, *, json_output: bool = True, **kwargs: Any
) -> Callable[[Callable[..., Any]], click.Command]:
    """Declare an admin command on ``group``: error handling, ``--url``,
    ``--prefix`` and (unless ``json_output=False``) a ``--json`` flag passed
    to the function as ``as_json``."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        f: Callable[..., Any] = _handle_errors(fn)
        if json_output:
            f = click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print JSON (stable keys) instead of a table.",
            )(f)
        f = click.option(
            "--prefix",
            default=None,
            expose_value=False,
            callback=_set_prefix,
            help=f"Key prefix [env SCHEDULER_PREFIX; default {defaults.PREFIX!r}].",
        )(f)
        f = click.option(
            "--url",
            default=None,
            expose_value=False,
            callback=_set_url,
            help=f"Redis URL [env REDIS_URL; default {defaults.REDIS_URL}].",
        )(f)
        command = group.command(name, **kwargs)(f)
        # The shared options go last in --help, after the command's own.
        shared = [p for p in command.params if p.name in ("url", "prefix", "as_json")]
        command.params = [p for p in command.params if p not in shared] + shared
        return command

    return decorate


def console() -> Console:
    """A rich console on stdout; wide and colourless when not a terminal, so
    piped output is neither truncated nor full of escape codes."""
    out = Console(soft_wrap=False)
    if not out.is_terminal:
        out = Console(width=200, no_color=True, highlight=False, soft_wrap=False)
    return out


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def format_age(seconds: float | None) -> str:
    """``12.3s``, ``4m05s``, ``2h03m``, ``3d04h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + format_age(-seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_time(when: datetime | None, now: datetime | None = None) -> str:
    """UTC time to the millisecond, with the distance to ``now`` if given."""
    if when is None:
        return "-"
    shown = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if now is None:
        return shown
    delta = (when - now).total_seconds()
    rel = f"in {format_age(delta)}" if delta >= 0 else f"{format_age(-delta)} ago"
    return f"{shown} ({rel})"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"1.5m"``, ``"2h"``, ``"1d"``, ``"500ms"``.

    Raises:
        CliError: (exit 2) not a finite, non-negative duration.
    """
    match = _DURATION_RE.match(text)
    if not match:
        fail(f"{option}: {text!r} is not a duration (e.g. 30, 30s, 5m, 2h, 1d, 500ms)", 2)
    value = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(value):
        fail(f"{option}: {text!r} is too large", 2)
    return value
