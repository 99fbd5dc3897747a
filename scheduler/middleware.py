"""Hooks around task execution: middleware and worker lifecycle hooks.

**Middleware** wraps every execution of a task, in the thread, process-pool
child or event loop that runs it (so it sees the job's
:func:`~scheduler.context.current_job` and may set context variables for
the task): ``middleware(ctx, call_next) -> result``. ``call_next()`` runs
the rest of the chain and the task and returns its result (or raises what
it raised); a middleware may change the result, raise, or not call the
task at all. Several run in the order they were added: the first added is
the outermost. Modelled on Sidekiq's server middleware chain
(``chain.rb``) and Dramatiq's middleware::

    @app.hooks.middleware
    def timing(ctx, call_next):
        started = time.monotonic()
        try:
            return call_next()
        finally:
            log.info("%s took %.3f s", ctx.id, time.monotonic() - started)

For ``async def`` tasks the chain runs on the worker's event loop and is
asynchronous: ``await call_next()``. Which tasks a middleware wraps follows
from what it is:

* a plain function wraps sync tasks; an ``async def`` function wraps async tasks;
* an object wraps sync tasks with its ``__call__`` (if not ``async def``) and
  async tasks with an ``async def acall(ctx, call_next)`` method (if it has
  one) -- :mod:`scheduler.contrib.otel` and :mod:`scheduler.contrib.sentry`
  provide both.

**Lifecycle hooks** run once per process that runs tasks: in the worker
before it leases anything and after it stopped, and in every process-pool
child after it imported the app and when it exits. A hook takes no
arguments; an ``async def`` hook runs on that process's event loop, so a
client it creates (``redis.asyncio``, ``httpx.AsyncClient``) is bound to
the loop the async tasks run on. A failing start-up hook stops the worker
(or child) from starting; a failing shutdown hook is logged and the others
still run.

Pure: no Redis, no app (the app holds a :class:`Hooks`, the worker runs it).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs

from scheduler.context import JobContext
from scheduler.errors import ValidationError
from scheduler.validation import shown

__all__ = ["CallNext", "Hooks", "Middleware", "call_async_chain", "call_sync_chain"]

log = logging.getLogger("scheduler.worker")

#: ``call_next()`` of a sync chain: runs the rest, returns the task's result.
CallNext = Callable[[], Any]
#: A middleware: ``(ctx, call_next) -> result`` (see the module docstring).
Middleware = Callable[[JobContext, CallNext], Any]
#: A lifecycle hook: no arguments; sync or ``async def``.
Hook = Callable[[], Any]

F = TypeVar("F", bound=Callable[..., Any])


def _sync_part(mw: Any) -> Callable[[JobContext, CallNext], Any] | None:
    if inspect.isfunction(mw) or inspect.ismethod(mw):
        return None if inspect.iscoroutinefunction(mw) else mw
    if not callable(mw):
        return None
    call = getattr(type(mw), "__call__", None)  # noqa: B004 - the class's method, to inspect it
    if call is None or inspect.iscoroutinefunction(call):
        return None
    wrapped: Callable[[JobContext, CallNext], Any] = mw
    return wrapped


def _async_part(mw: Any) -> Callable[[JobContext, Callable[[], Awaitable[Any]]], Any] | None:
    if inspect.isfunction(mw) or inspect.ismethod(mw):
        return mw if inspect.iscoroutinefunction(mw) else None
    acall = getattr(mw, "acall", None)
    if acall is not None and inspect.iscoroutinefunction(acall):
        return acall  # type: ignore[no-any-return]  # checked above
    call = getattr(type(mw), "__call__", None) if callable(mw) else None  # noqa: B004
    if call is not None and inspect.iscoroutinefunction(call):
        wrapped: Callable[[JobContext, Callable[[], Awaitable[Any]]], Any] = mw
        return wrapped
    return None


@attrs.define
class Hooks:
    """An app's middleware and worker lifecycle hooks (``app.hooks``).

    Attributes:
        middlewares: in order, outermost first.
        startup: start-up hooks, in order.
        shutdown: shutdown hooks, in order.
    """

    middlewares: list[Any] = attrs.field(factory=list)
    startup: list[Hook] = attrs.field(factory=list)
    shutdown: list[Hook] = attrs.field(factory=list)

    def middleware(self, mw: F) -> F:
        """Add a middleware (innermost so far); usable as a decorator.

        Raises:
            ValidationError: ``mw`` wraps neither sync nor async tasks.
        """
        if _sync_part(mw) is None and _async_part(mw) is None:
            raise ValidationError(
                "a middleware is a function (ctx, call_next), an async one, or an object "
                f"with __call__ and/or an async acall method; got {shown(mw)}"
            )
        self.middlewares.append(mw)
        return mw

    def on_startup(self, fn: F) -> F:
        """Add a start-up hook (no arguments, sync or async); a decorator."""
        self.startup.append(_hook(fn))
        return fn

    def on_shutdown(self, fn: F) -> F:
        """Add a shutdown hook (no arguments, sync or async); a decorator."""
        self.shutdown.append(_hook(fn))
        return fn

    def sync_chain(self) -> list[Callable[[JobContext, CallNext], Any]]:
        """The middlewares that wrap sync tasks, outermost first."""
        return [m for m in map(_sync_part, self.middlewares) if m is not None]

    def async_chain(self) -> list[Callable[[JobContext, Callable[[], Awaitable[Any]]], Any]]:
        """The middlewares that wrap async tasks, outermost first."""
        return [m for m in map(_async_part, self.middlewares) if m is not None]


def _hook(fn: F) -> F:
    if not callable(fn):
        raise ValidationError(f"a lifecycle hook must be callable, got {shown(fn)}")
    return fn


def call_sync_chain(
    chain: Sequence[Callable[[JobContext, CallNext], Any]], ctx: JobContext, call: CallNext
) -> Any:
    """Run ``call`` inside ``chain`` (outermost first); returns what the
    outermost middleware returns, raises what it raises."""
    if not chain:
        return call()

    def step(i: int) -> Any:
        if i == len(chain):
            return call()
        return chain[i](ctx, lambda: step(i + 1))

    return step(0)


async def call_async_chain(
    chain: Sequence[Callable[[JobContext, Callable[[], Awaitable[Any]]], Any]],
    ctx: JobContext,
    call: Callable[[], Awaitable[Any]],
) -> Any:
    """Await ``call()`` inside the async ``chain`` (outermost first)."""

    async def step(i: int) -> Any:
        if i == len(chain):
            return await call()
        return await chain[i](ctx, lambda: step(i + 1))

    return await step(0)
