"""Where tasks run in one process: :class:`TaskRuntime` (the app, its hooks
and the process's event loop) and what it needs of an app (:class:`TaskApp`).

A worker with the thread pool has one; so has each process-pool child
(:func:`~.child.child_main`). Every execution runs inside the job's
context (:mod:`scheduler.context`) and the app's middleware
(:mod:`scheduler.middleware`); ``async def`` tasks run on the event loop
(:mod:`.loop`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from scheduler.codec import JSONCodec
from scheduler.context import JobContext, ProgressReporter, enter_job, job_context, leave_job
from scheduler.middleware import Hooks, call_async_chain, call_sync_chain
from scheduler.task import Task
from scheduler.worker.loop import EventLoop

__all__ = ["ProgressStore", "TaskApp", "TaskRuntime"]

log = logging.getLogger("scheduler.worker")


@runtime_checkable
class TaskApp(Protocol):
    """What running a task needs of an app (:class:`scheduler.Scheduler` is one)."""

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        """Registered tasks by name."""
        ...

    @property
    def max_payload_bytes(self) -> int:
        """Limit on an encoded result, bytes."""
        ...

    @property
    def codec(self) -> JSONCodec:
        """Decodes arguments and encodes results (the producer's codec)."""
        ...


class ProgressStore(Protocol):
    """Where progress goes (the app's storage layer, ``app.backend``)."""

    def set_progress(
        self, queue: str, job_id: str, token: str, value: float | None, message: str
    ) -> bool:
        """Store a leased job's progress; False if the lease is no longer held."""
        ...


class TaskRuntime:
    """What one process running tasks keeps: the app, its hooks
    (``app.hooks``, :class:`~scheduler.middleware.Hooks`; none if the app has
    no ``hooks``) and its event loop (:class:`~.loop.EventLoop`, started on
    first use)."""

    def __init__(self, app: TaskApp) -> None:
        self.app = app
        hooks = getattr(app, "hooks", None)
        self.hooks = hooks if isinstance(hooks, Hooks) else Hooks()
        self.loop = EventLoop()
        self._chains_for = -1  # middlewares seen when the chains were made
        self._sync_chain: list[Any] = []
        self._async_chain: list[Any] = []
        # id(task function) -> (the function, is it ``async def``?)
        self._is_async: dict[int, tuple[Callable[..., Any], bool]] = {}

    def _chains(self) -> None:
        """Remake the chains if middleware was added since (cheap check per job)."""
        if len(self.hooks.middlewares) != self._chains_for:
            self._sync_chain = self.hooks.sync_chain()
            self._async_chain = self.hooks.async_chain()
            self._chains_for = len(self.hooks.middlewares)

    def reporter(self, job_queue: str, job_id: str, token: str) -> ProgressReporter | None:
        """The progress callback of a job (None if the app has no storage layer)."""
        store: ProgressStore | None = getattr(self.app, "backend", None)
        if store is None or not hasattr(store, "set_progress"):
            return None

        def report(value: float | None, message: str) -> None:
            store.set_progress(job_queue, job_id, token, value, message)

        return report

    def invoke(
        self,
        task: Task[Any, Any],
        ctx: JobContext,
        reporter: ProgressReporter | None,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> Any:
        """Call the task in ``ctx`` through the middleware; an ``async def``
        task runs on the event loop (cancelled at the context's deadline)."""
        fn = task.fn
        if len(self.hooks.middlewares) != self._chains_for:
            self._chains()
        known = self._is_async.get(id(fn))
        if known is None or known[0] is not fn:  # the entry holds fn: its id stays its own
            known = self._is_async[id(fn)] = (fn, inspect.iscoroutinefunction(fn))
        if known[1]:
            return self.loop.run(lambda: self._invoke_async(fn, ctx, reporter, args, kwargs))
        chain = self._sync_chain
        token = enter_job(ctx, reporter)
        try:
            if chain:
                value = call_sync_chain(chain, ctx, lambda: fn(*args, **kwargs))
            else:  # no middleware: no closure per job
                value = fn(*args, **kwargs)
        finally:
            leave_job(token)
        if value is not None and inspect.isawaitable(value):  # a sync callable returning one
            awaitable = value
            return self.loop.run(lambda: self._in_context(ctx, reporter, awaitable))
        return value

    async def _invoke_async(
        self,
        fn: Callable[..., Any],
        ctx: JobContext,
        reporter: ProgressReporter | None,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> Any:

        with job_context(ctx, reporter):
            left = ctx.time_left()
            async with asyncio.timeout(None if left is None else max(0.0, left)):
                return await call_async_chain(self._async_chain, ctx, lambda: fn(*args, **kwargs))

    async def _in_context(
        self, ctx: JobContext, reporter: ProgressReporter | None, awaitable: Any
    ) -> Any:
        with job_context(ctx, reporter):
            return await awaitable

    def startup(self) -> None:
        """Run the start-up hooks in order (async ones on the loop).

        Raises:
            Whatever a hook raised (the process should not start).
        """
        for hook in self.hooks.startup:
            self.loop.call(hook)

    def shutdown(self) -> None:
        """Run the shutdown hooks in order (a failure is logged, the others
        still run), then close the event loop."""
        for hook in self.hooks.shutdown:
            try:
                self.loop.call(hook)
            except Exception:
                log.exception("shutdown hook %r failed", hook)
        self.loop.close()
