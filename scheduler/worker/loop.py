"""One long-lived asyncio event loop per process that runs tasks.

``async def`` tasks (and async middleware and lifecycle hooks) of a worker,
or of one process-pool child, all run on the same loop, in a daemon thread
started on first use. So a client created by an async start-up hook (or
lazily by the first job) keeps working for every later job -- unlike
``asyncio.run()`` per job, whose loop closes after each job ("Event loop is
closed" on the next job with an app-wide ``redis.asyncio`` client).

The pool thread that took an async job submits its coroutine here and
waits for it (:meth:`EventLoop.run`), so up to ``concurrency`` coroutines
run at once on the loop while sync tasks keep running in their threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["EventLoop"]

T = TypeVar("T")


class EventLoop:
    """An event loop running forever in a daemon thread (started lazily)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        """True once the loop's thread runs."""
        return self._loop is not None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def main() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=main, name="scheduler-asyncio", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run the coroutine ``make()`` on the loop and wait for its result
        (called from any thread but the loop's own).

        Raises:
            Whatever the coroutine raised.
        """
        loop = self._ensure()

        async def main() -> T:
            return await make()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(main(), loop)
        return future.result()

    def close(self, timeout: float = 5.0) -> None:
        """Cancel what still runs on the loop, stop it and wait up to
        ``timeout`` seconds for its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def cancel_all() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):  # best effort: the loop stops anyway
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn()``; if it returns an awaitable, run that on the loop."""
        value = fn()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            awaitable: Awaitable[Any] = value
            return self.run(lambda: awaitable)
        return value
