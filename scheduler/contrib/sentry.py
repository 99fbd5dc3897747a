"""Sentry error reporting: a scope per job (the ``sentry`` extra).

:class:`SentryMiddleware` runs each execution in its own isolation scope,
tagged with the job's task, queue and attempt and carrying its context
(id, meta, attempt of max), so events the task sends -- and the exception
that fails it -- say which job they came from, and nothing leaks into the
next job run by the same thread. A :class:`~scheduler.control.Retry` is not
reported; with ``only_final=True`` a failure is reported only when it ends
the job (last attempt, or :class:`~scheduler.control.Fail`)::

    sentry_sdk.init(dsn=...)
    app.hooks.middleware(SentryMiddleware())

It wraps sync and ``async def`` tasks, in threads and process-pool children
(call ``sentry_sdk.init`` at import of the app module, or in a start-up hook).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk

from scheduler.context import JobContext
from scheduler.control import Fail, Retry

__all__ = ["SentryMiddleware"]


class SentryMiddleware:
    """A Sentry scope per job execution (see the module docstring).

    Args:
        only_final: report only failures that end the job (default: every
            failed attempt but a requested retry).
    """

    def __init__(self, only_final: bool = False) -> None:
        self.only_final = only_final

    @contextmanager
    def _scope(self, ctx: JobContext) -> Iterator[None]:
        with sentry_sdk.isolation_scope() as scope:
            scope.set_tag("scheduler.task", ctx.task)
            scope.set_tag("scheduler.queue", ctx.queue)
            scope.set_tag("scheduler.attempt", str(ctx.attempt))
            scope.set_context(
                "job",
                {
                    "id": ctx.id,
                    "task": ctx.task,
                    "queue": ctx.queue,
                    "attempt": ctx.attempt,
                    "max_attempts": ctx.max_attempts,
                    "meta": dict(ctx.meta),
                },
            )
            scope.transaction = ctx.task
            try:
                yield
            except Retry:
                raise
            except Exception as exc:
                final = isinstance(exc, Fail) or ctx.is_last_attempt
                if final or not self.only_final:
                    sentry_sdk.capture_exception(exc)
                raise

    def __call__(self, ctx: JobContext, call_next: Callable[[], Any]) -> Any:
        """Run a sync task in the job's scope."""
        with self._scope(ctx):
            return call_next()

    async def acall(self, ctx: JobContext, call_next: Callable[[], Awaitable[Any]]) -> Any:
        """Run an ``async def`` task in the job's scope."""
        with self._scope(ctx):
            return await call_next()
