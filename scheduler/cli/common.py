"""Shared plumbing of the admin commands: connection, output, errors.

* **Connection**: ``--url`` (env ``REDIS_URL``) and ``--prefix`` (env
  ``SCHEDULER_PREFIX``) are accepted on the ``scheduler`` group and on every
  admin command (``scheduler --url X status`` and ``scheduler status --url X``
  both work). Commands build a :class:`scheduler.Scheduler` from them; no
  app import is needed.
* **Output**: rich tables for people; ``--json`` prints one JSON document
  with documented, stable keys (``docs/operating.md``).
* **Times** are shown in local time with their UTC offset
  (``2030-01-02 03:04:05.678 +01:00``); ``--utc`` (on the group or any
  admin command) shows UTC instead, marked ``UTC``. ``--at``/``--start``
  read a time without an offset as local time, so what is shown can be
  typed back.
* **Actor**: commands that change something take ``--actor NAME`` (default
  ``$SCHEDULER_ACTOR``, else ``user@host``), named in the audit event the
  change writes (``scheduler events --action ...``).
* **Exit codes**: 0 did something (or showed what was asked); 1 nothing
  to do (pausing a paused queue, purging an empty set, a retry matching
  nothing), not found (a job, a schedule, a queue never used), a damaged
  record, Redis failed / unreachable, or an unexpected error; 2 usage (bad option or URL,
  malformed JSON, invalid name, bad priority, out-of-range value). Errors
  are one line on stderr, never a traceback: click's own usage errors are
  shortened by :class:`SchedulerGroup` (the root group), everything an
  admin command raises is mapped by :func:`admin_command`, and an
  unexpected exception becomes one line naming it (``SCHEDULER_DEBUG=1``
  shows its traceback instead).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import attrs
import click
import redis
from rich.console import Console

from scheduler import defaults
from scheduler.app import Scheduler
from scheduler.backend import topology
from scheduler.backend.connection import check_url
from scheduler.errors import JobNotFoundError, SchedulerError, ValidationError
from scheduler.validation import validate_queue_name

__all__ = [
    "MAX_INDEX",
    "CliConfig",
    "CliError",
    "CliUsageError",
    "SchedulerGroup",
    "actor_option",
    "admin_command",
    "confirm",
    "console",
    "create_option",
    "echo_json",
    "fail",
    "get_app",
    "nothing_done",
    "queue_name_option",
    "redact_url",
    "require_queue",
    "resolve_setting",
]

F = TypeVar("F", bound=Callable[..., Any])


#: Largest ``--limit``/``--offset``/``--count`` accepted: a Redis set holds
#: at most 2**32 - 1 members, so a larger index can never match a job (and
#: would overflow Redis's 64-bit range arithmetic).
MAX_INDEX = 2**32 - 1

#: Environment variable that turns an unexpected error's one-line message
#: back into the full traceback (for bug reports).
DEBUG_ENV = "SCHEDULER_DEBUG"


@attrs.define
class CliConfig:
    """Connection settings of one CLI invocation (``ctx.obj``).

    ``url``/``prefix`` are what ``--url``/``--prefix`` gave (None: not
    given; the environment or the default applies, see
    :func:`resolve_setting`).
    """

    url: str | None = None
    prefix: str | None = None
    app: Scheduler | None = None
    utc: bool = False


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


class CliError(click.ClickException):
    """A one-line error; exit code 1 (failed, not found, Redis unreachable)."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {one_line(self.format_message())}", file=file or sys.stderr)


class CliUsageError(CliError):
    """A one-line usage error (bad input); exit code 2."""

    exit_code = 2


# click >= 8.2 raises this (a UsageError) to print a group's help when it is
# called with no sub-command; that help is wanted as it is.
_HELP_ERRORS: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if cls is not None
)


def _short_usage_error(exc: click.UsageError) -> CliUsageError:
    """click's multi-line usage error (usage, hint, message) as one line."""
    path = exc.ctx.command_path if exc.ctx is not None else "scheduler"
    return CliUsageError(f"{one_line(exc.format_message())} (see '{path} --help')")


class SchedulerGroup(click.Group):
    """The root ``scheduler`` group: every usage error of any command below
    it (unknown option, missing argument, bad value for a typed option) is
    shown as one ``Error: ...`` line with a ``--help`` hint, exit code 2,
    instead of click's three-line usage block."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _HELP_ERRORS:
            raise
        except click.UsageError as exc:
            raise _short_usage_error(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HELP_ERRORS:
            raise
        except click.UsageError as exc:
            raise _short_usage_error(exc) from None


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Stop the command with a one-line error and ``exit_code`` (1 or 2)."""
    raise (CliUsageError if exit_code == 2 else CliError)(message)


def confirm(question: str, refused: str) -> None:
    """Ask ``question`` on stderr (default no); a "no" or no answer (end of
    input) stops the command with the one-line error ``not confirmed:
    <refused>``, exit 1.

    Raises:
        CliError: not confirmed.
    """
    try:
        confirmed = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input or Ctrl-C at the prompt: end its line
        click.echo(err=True)
        confirmed = False
    if not confirmed:
        fail(f"not confirmed: {refused}", 1)


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


def resolve_setting(given: str | None, env: str, default: str, option: str) -> str:
    """The value of a connection option: ``given`` (the command line) if not
    None, else the environment variable ``env`` if set, else ``default``.

    click ignores an empty environment variable and would silently use the
    default -- for ``REDIS_URL`` that means another server than the one
    meant. Here an empty value is an error.

    Raises:
        CliUsageError: (exit 2) the option or the variable is set but empty.
    """
    value = given if given is not None else os.environ.get(env)
    if value is None:
        return default
    if not value.strip():
        where = option if given is not None else f"{env} (environment)"
        fail(f"{where} is empty; give a value or unset it (default {default!r})", 2)
    return value


def get_app(ctx: click.Context | None = None) -> Scheduler:
    """The :class:`Scheduler` for ``--url``/``--prefix`` (made once per invocation).

    Raises:
        CliUsageError: (exit 2) empty or malformed URL, invalid prefix.
    """
    ctx = ctx or click.get_current_context()
    cfg = config(ctx)
    if cfg.app is None:
        url = resolve_setting(cfg.url, "REDIS_URL", defaults.REDIS_URL, "--url")
        prefix = resolve_setting(cfg.prefix, "SCHEDULER_PREFIX", defaults.PREFIX, "--prefix")
        try:
            check_url(url)
        except ValidationError as exc:
            fail(f"bad --url/REDIS_URL {redact_url(url)!r}: {exc}", 2)
        cfg.url = url
        cfg.app = Scheduler.from_url(url, prefix=prefix)  # ValidationError: bad prefix, exit 2
        ctx.call_on_close(cfg.app.close)
    return cfg.app


def queue_name_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    """click callback of a ``-q QUEUE`` option: a malformed name is a usage
    error (exit 2) before anything is read."""
    if value is not None:
        try:
            validate_queue_name(value)
        except ValidationError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _current_url() -> str:
    url = config(click.get_current_context()).url
    return redact_url(url) if url is not None else "?"


def _set_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        config(ctx).url = value


def _set_prefix(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        config(ctx).prefix = value


def _set_utc(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        config(ctx).utc = True


def actor_option(fn: F) -> F:
    """``--actor NAME``: who runs the action (passed as ``actor``; None lets
    the library use ``$SCHEDULER_ACTOR`` or ``user@host``)."""
    return click.option(
        "--actor",
        default=None,
        help=f"Who runs this, named in its audit event [env {defaults.ACTOR_ENV}; "
        "default: user@host].",
    )(fn)


def create_option(fn: F) -> F:
    """``--create``: act on a queue that was never used (passed as ``create``)."""
    return click.option(
        "--create",
        is_flag=True,
        help="Act on the queue even if it was never used (registers it).",
    )(fn)


def require_queue(app: Scheduler, name: str, create: bool) -> str:
    """``name`` validated, and known to the registry -- or registered when
    ``create`` is set. A typo'd name would otherwise create a queue nothing
    serves.

    Raises:
        CliUsageError: (exit 2) a malformed name.
        CliError: (exit 1) a queue never used, without ``create``.
    """
    try:
        validate_queue_name(name)
    except ValidationError as exc:
        fail(str(exc), 2)
    if name in app.queue_names():
        return name
    if not create:
        fail(f"no queue {name!r} (never used); give --create to use it anyway", 1)
    app.backend.register_queue(name)
    return name


def nothing_done(message: str, data: dict[str, Any] | None, as_json: bool) -> NoReturn:
    """End a command that found nothing to do: its JSON (if asked) on stdout,
    ``message`` as the one-line error, exit 1."""
    if as_json and data is not None:
        echo_json(data)
    fail(message, 1)


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
            fail(f"Redis at {_current_url()} refused the credentials: {exc}", 1)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            fail(f"cannot reach Redis at {_current_url()}: {exc}", 1)
        except redis.RedisError as exc:
            explained = topology.explain_error(exc)
            if explained is not None:
                fail(f"Redis at {_current_url()}: {explained}", 1)
            fail(f"Redis error: {exc}", 1)
        except SchedulerError as exc:
            fail(str(exc), 1)
        except Exception as exc:  # a bug: one line, unless asked for the traceback
            if os.environ.get(DEBUG_ENV):
                raise
            fail(
                f"unexpected {type(exc).__name__}: {exc} "
                f"(a bug; {DEBUG_ENV}=1 shows the traceback)",
                1,
            )

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
            "--utc",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=_set_utc,
            help="Show times in UTC [default: local time, with its offset].",
        )(f)
        f = click.option(
            "--prefix",
            default=None,
            expose_value=False,
            callback=_set_prefix,
            help=f"Key prefix [env SCHEDULER_PREFIX; default: {defaults.PREFIX}].",
        )(f)
        f = click.option(
            "--url",
            default=None,
            expose_value=False,
            callback=_set_url,
            help=f"Redis URL [env REDIS_URL; default: {defaults.REDIS_URL}].",
        )(f)
        command = group.command(name, **kwargs)(f)
        # The shared options go last in --help, after the command's own.
        shared = [p for p in command.params if p.name in ("url", "prefix", "utc", "as_json")]
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
