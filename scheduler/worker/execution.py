"""Running one leased job's task and turning what happens into an outcome.

Used in the worker's threads directly, and inside child processes for the
process pool (:func:`run_in_child`), where the app is imported once per child
from its import path.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import traceback
from typing import TYPE_CHECKING, Any

import attrs

from scheduler.backend.record import JobOptions
from scheduler.errors import PayloadError, UnknownTaskError
from scheduler.serialization import decode_payload, encode_error, encode_result

if TYPE_CHECKING:
    from scheduler.app import Scheduler

__all__ = ["LeasedJob", "Outcome", "import_app", "run_in_child", "run_task"]


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
    message = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(exc))
    return Outcome(
        ok=False,
        text=encode_error(message, type(exc).__name__, tb, attempt),
        error=message,
        retryable=retryable,
    )


def run_task(app: Scheduler, task_name: str, payload: str, attempt: int) -> Outcome:
    """Run ``task_name`` with the decoded payload; never raises.

    * Unknown task: retryable failure (another worker version may know it);
      after max attempts the job is dead with that reason.
    * Undecodable payload, or a result that is not JSON-serializable or too
      large: permanent failure (dead now, with the reason).
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
        args, kwargs = decode_payload(payload)
    except PayloadError as exc:
        return _failure(exc, attempt, retryable=False)
    try:
        value: Any = task.fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
    except BaseException as exc:  # the task's own failure, whatever it is
        return _failure(exc, attempt, retryable=isinstance(exc, task.retry_on))
    try:
        return Outcome(ok=True, text=encode_result(value, app.max_payload_bytes))
    except PayloadError as exc:
        return _failure(exc, attempt, retryable=False)


async def _await(value: Any) -> Any:
    return await value


def import_app(path: str) -> Scheduler:
    """Import a :class:`Scheduler` from ``"package.module:attribute"``.

    Raises:
        ValueError: malformed path, or the attribute is not a Scheduler.
        ImportError: the module cannot be imported.
    """
    from scheduler.app import Scheduler

    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"app path must look like 'package.module:app', got {path!r}")
    module = importlib.import_module(module_name)
    obj: object = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Scheduler):
        raise ValueError(f"{path} is a {type(obj).__name__}, not a scheduler.Scheduler")
    return obj


_child_app: Scheduler | None = None


def init_child(app_path: str) -> None:
    """Process-pool initializer: import the app once in the child."""
    global _child_app
    _child_app = import_app(app_path)


def run_in_child(task_name: str, payload: str, attempt: int) -> Outcome:
    """Process-pool entry point: :func:`run_task` with the child's app."""
    if _child_app is None:
        raise RuntimeError("process pool child was not initialised with an app")
    return run_task(_child_app, task_name, payload, attempt)
