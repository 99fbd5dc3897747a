"""Running one leased job's task and turning what happens into an outcome.

Used in the worker's threads directly, and inside child processes for the
process pool (:func:`child_main`), where the app is imported once per child
from its import path by a loader function passed in.
Nothing here imports the app: what running a task needs of it is
:class:`TaskApp`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import signal
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any, Protocol, runtime_checkable

import attrs

from scheduler.backend.record import JobOptions
from scheduler.codec import JSONCodec
from scheduler.errors import PayloadError, UnknownTaskError
from scheduler.serialization import encode_error
from scheduler.task import Task

__all__ = [
    "AppLoader",
    "LeasedJob",
    "Outcome",
    "TaskApp",
    "child_main",
    "import_object",
    "load_task_app",
    "run_task",
]


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


#: Imports the app in a process-pool child from ``"package.module:attribute"``
#: (a module-level function, so it can be pickled by reference).
AppLoader = Callable[[str], TaskApp]


@attrs.define(eq=False)
class LeasedJob:
    """A job this worker holds a lease on.

    Attributes:
        queue: queue name.
        id: job id.
        token: lease (fencing) token.
        task: task name.
        payload: ``[args, kwargs]`` JSON text.
        attempt: this attempt's number (1-based).
        options: the job's stored options.
        priority: the job's priority (for logs).
        enqueued_ms: server enqueue time, ms since the Unix epoch.
        started: ``time.monotonic()`` when the worker started it.
        lost: set when a heartbeat found the lease stale.
    """

    queue: str
    id: str
    token: str
    task: str
    payload: str
    attempt: int
    options: JobOptions
    priority: float
    enqueued_ms: int
    started: float = 0.0
    lost: bool = False


@attrs.frozen
class Outcome:
    """Result of running a job's task once.

    Attributes:
        ok: True if the task returned and its result was encoded.
        text: result JSON if ok, else the error record JSON.
        error: one-line error message ("" if ok).
        retryable: a failure that may be retried (False: go dead now).
    """

    ok: bool
    text: str
    error: str = ""
    retryable: bool = True


def _failure(exc: BaseException, attempt: int, retryable: bool) -> Outcome:
    """The outcome recording ``exc``; never raises, whatever the exception's
    text (lone surrogates are escaped by :func:`encode_error`) or ``__str__``."""
    kind = type(exc).__name__
    try:
        message = f"{kind}: {exc}"
    except Exception:  # a task's exception whose __str__ fails
        message = f"{kind}: <str() of the exception failed>"
    try:
        tb = "".join(traceback.format_exception(exc))
    except Exception:  # same: record the job without a traceback
        tb = ""
    text = encode_error(message, kind, tb, attempt)
    return Outcome(
        ok=False,
        text=text,
        error=message.encode("utf-8", "backslashreplace").decode("utf-8"),
        retryable=retryable,
    )


def run_task(app: TaskApp, task_name: str, payload: str, attempt: int) -> Outcome:
    """Run ``task_name`` with the decoded payload; never raises.

    * Unknown task: retryable failure (another worker version may know it);
      after max attempts the job is dead with that reason.
    * Undecodable payload, or a result that cannot be stored exactly (not
      JSON-serializable, a non-``str`` key, too deep, not valid Unicode) or is
      too large: permanent failure (dead now, with the reason).
    * Whatever the task raised is recorded: text that is not valid Unicode is
      escaped and the error record says so (:func:`encode_error`).
    * An exception from the task: retryable if it is an instance of the
      task's ``retry_on`` types, else permanent.
    * ``async def`` tasks run to completion in a fresh event loop.
    """
    task = app.tasks.get(task_name)
    if task is None:
        return _failure(
            UnknownTaskError(f"task {task_name!r} is not registered in this worker's app"),
            attempt,
            retryable=True,
        )
    try:
        args, kwargs = app.codec.decode_payload(payload)
    except PayloadError as exc:
        return _failure(exc, attempt, retryable=False)
    try:
        value: Any = task.fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
    except BaseException as exc:  # the task's own failure, whatever it is
        return _failure(exc, attempt, retryable=isinstance(exc, task.retry_on))
    try:
        return Outcome(ok=True, text=app.codec.encode_result(value, app.max_payload_bytes))
    except Exception as exc:  # PayloadError, or a returned object whose methods fail
        return _failure(exc, attempt, retryable=False)


async def _await(value: Any) -> Any:
    return await value


def import_object(path: str) -> object:
    """Import the object at ``"package.module:attribute"`` (the attribute may
    be dotted).

    Raises:
        ValueError: malformed path.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such attribute.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"app path must look like 'package.module:app', got {path!r}")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_task_app(path: str) -> TaskApp:
    """Import an app from ``"package.module:attribute"`` and check that it
    has what running tasks needs (:class:`TaskApp`); the default
    :data:`AppLoader` of the process pool. ``scheduler.loading.import_app``
    checks for a :class:`scheduler.Scheduler` instead.

    Raises:
        ValueError: malformed path, or the object is not an app.
        ImportError: the module cannot be imported.
        AttributeError: the module has no such attribute.
    """
    obj = import_object(path)
    if not isinstance(obj, TaskApp):
        raise ValueError(f"{path} is a {type(obj).__name__}, not a scheduler app")
    return obj


def child_main(conn: Connection, load: AppLoader, app_path: str) -> None:
    """Entry point of a process-pool child (:mod:`scheduler.worker.children`):
    import the app once with ``load(app_path)``, then answer each
    ``(task, payload, attempt)`` received on ``conn`` with the
    :class:`Outcome` of :func:`run_task`, until the parent closes the pipe.

    SIGINT is ignored: a Ctrl-C reaches the whole process group, and the
    worker decides when its children stop.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    app = load(app_path)
    while True:
        try:
            task_name, payload, attempt = conn.recv()
        except (EOFError, OSError):  # the worker closed the pipe or died
            return
        conn.send(run_task(app, task_name, payload, attempt))
