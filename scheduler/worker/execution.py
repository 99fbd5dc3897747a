"""Running one leased job's task and turning what happens into an outcome.

Used in the worker's threads directly, and inside child processes for the
process pool (:func:`child_main`), where the app is imported once per child
from its import path by a loader function passed in. Each process that runs
tasks has one :class:`~.runtime.TaskRuntime`: the app, its hooks
(:mod:`scheduler.middleware`) and its event loop (:mod:`.loop`); every
execution runs inside the job's context (:mod:`scheduler.context`) and the
app's middleware.
Nothing here imports the app: what running a task needs of it is
:class:`TaskApp`.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import attrs

from scheduler.backend.record import JobOptions
from scheduler.context import JobContext, ProgressReporter
from scheduler.control import Fail, Retry
from scheduler.errors import PayloadError, UnknownTaskError
from scheduler.serialization import encode_error
from scheduler.task import Task
from scheduler.worker.runtime import TaskApp, TaskRuntime

__all__ = [
    "AppLoader",
    "LeasedJob",
    "Outcome",
    "TaskApp",
    "TaskRuntime",
    "child_main",
    "import_object",
    "job_context_of",
    "load_task_app",
    "run_task",
]


log = logging.getLogger("scheduler.worker")

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
        meta: the job's metadata JSON text (``""``: none).
        ready_ms: when it became ready (its ETA), ms since the Unix epoch
            (0: the enqueue time).
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
    meta: str = ""
    ready_ms: int = 0


def job_context_of(job: LeasedJob, worker_id: str = "") -> JobContext:
    """The :class:`~scheduler.context.JobContext` of ``job`` starting now."""
    now = time.time()
    meta: Any = {}
    if job.meta:
        try:
            meta = json.loads(job.meta)
        except ValueError:  # the scripts store only JSON objects; never fail a job on it
            meta = {}
    options = job.options
    timeout_ms = options.timeout_ms
    # Positional, in JobContext's field order (once per job: keywords cost a
    # dict per call); tests/test_task_context.py reads every field back.
    return JobContext(
        job.id,  # id
        job.task,  # task
        job.queue,  # queue
        job.attempt,  # attempt
        options.max_attempts,  # max_attempts
        meta if isinstance(meta, dict) else {},  # meta
        job.enqueued_ms / 1000,  # enqueued_at
        (job.ready_ms or job.enqueued_ms) / 1000,  # eta
        now + options.lease_ms / 1000,  # lease_deadline
        None if timeout_ms is None else now + timeout_ms / 1000,  # deadline
        job.priority,  # priority
        worker_id,  # worker_id
    )


@attrs.frozen
class Outcome:
    """Result of running a job's task once.

    Attributes:
        ok: True if the task returned and its result was encoded.
        text: result JSON if ok, else the error record JSON.
        error: one-line error message ("" if ok).
        retryable: a failure that may be retried (False: go dead now).
        retry_delay_ms: delay of the retry, ms, when decided where the task
            ran (``Retry(delay=...)``, or its task's backoff with the
            exception); None: the worker applies the task's backoff.
    """

    ok: bool
    text: str
    error: str = ""
    retryable: bool = True
    retry_delay_ms: int | None = None


#: The outcome of every task that returned None (an Outcome is immutable).
_OK_NULL = Outcome(ok=True, text="null")


def _failure(
    exc: BaseException, attempt: int, retryable: bool, retry_delay_ms: int | None = None
) -> Outcome:
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
        retry_delay_ms=retry_delay_ms if retryable else None,
    )


def _task_failure(task: Task[Any, Any], exc: BaseException, attempt: int) -> Outcome:
    """The outcome of ``task`` raising ``exc``: :class:`~scheduler.control.Retry`
    retries (at its delay, or by the backoff), :class:`~scheduler.control.Fail`
    goes dead, others retry by ``retry_on`` at the task's backoff for ``exc``."""
    if isinstance(exc, Fail):
        return _failure(exc, attempt, retryable=False)
    if isinstance(exc, Retry):
        seconds = exc.delay if exc.delay is not None else task.backoff.delay(attempt, exc)
        return _failure(exc, attempt, retryable=True, retry_delay_ms=round(seconds * 1000))
    if not isinstance(exc, task.retry_on):
        return _failure(exc, attempt, retryable=False)
    try:
        delay_ms: int | None = round(task.backoff.delay(attempt, exc) * 1000)
    except Exception:  # a policy bug: let the worker apply the backoff without the exception
        log.exception("backoff of task %s failed", task.name)
        delay_ms = None
    return _failure(exc, attempt, retryable=True, retry_delay_ms=delay_ms)


def run_task(
    app: TaskApp,
    task_name: str,
    payload: str,
    attempt: int,
    context: JobContext | None = None,
    reporter: ProgressReporter | None = None,
    runtime: TaskRuntime | None = None,
) -> Outcome:
    """Run ``task_name`` with the decoded payload; never raises.

    * Unknown task: retryable failure (another worker version may know it);
      after max attempts the job is dead with that reason.
    * Undecodable payload, or a result that cannot be stored exactly (not
      JSON-serializable, a non-``str`` key, too deep, not valid Unicode) or is
      too large: permanent failure (dead now, with the reason).
    * Whatever the task raised is recorded: text that is not valid Unicode is
      escaped and the error record says so (:func:`encode_error`).
    * :class:`~scheduler.control.Retry`: retryable, at its delay;
      :class:`~scheduler.control.Fail`: permanent. Another exception:
      retryable if it is an instance of the task's ``retry_on`` types (at the
      task's backoff for it), else permanent.
    * The task runs inside ``context`` (:func:`~scheduler.context.current_job`)
      and the app's middleware; ``async def`` tasks run on ``runtime``'s
      event loop (default: a runtime of ``app`` made for this call).
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
    if runtime is None:
        runtime = TaskRuntime(app)
    if context is None:
        context = _bare_context(task_name, attempt, task)
    try:
        value = runtime.invoke(task, context, reporter, args, kwargs)
    except BaseException as exc:  # the task's own failure, whatever it is
        return _task_failure(task, exc, attempt)
    try:
        text = app.codec.encode_result(value, app.max_payload_bytes)
        return _OK_NULL if text == "null" else Outcome(True, text)  # positional: per job
    except Exception as exc:  # PayloadError, or a returned object whose methods fail
        return _failure(exc, attempt, retryable=False)


def _bare_context(task_name: str, attempt: int, task: Task[Any, Any]) -> JobContext:
    """A context for a run outside a worker (tests, tools): no job id."""
    now = time.time()
    return JobContext(
        id="",
        task=task_name,
        queue=task.queue,
        attempt=attempt,
        max_attempts=task.max_attempts,
        meta={},
        enqueued_at=now,
        eta=now,
        lease_deadline=now + task.lease,
    )


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
    import the app once with ``load(app_path)``, run its start-up hooks, then
    answer each ``(context, token, payload)`` received on ``conn`` with the
    :class:`Outcome` of :func:`run_task`, until the parent closes the pipe
    or terminates the child (SIGTERM); the shutdown hooks run then.

    SIGINT is ignored: a Ctrl-C reaches the whole process group, and the
    worker decides when its children stop. A SIGTERM that arrives while the
    app is imported or its start-up hooks run (a child started just as the
    worker stops) is held until they finish, then the shutdown hooks run
    and the child exits 0: exiting inside an event loop's start-up hook
    would leave a half-run coroutine and a broken loop behind (tracebacks
    on stderr) and skip the shutdown hooks. The parent kills a child that
    takes too long.

    A SIGTERM that arrives while a job runs does not interrupt it: systemd
    (``KillMode=control-group``) and ``kill -TERM -PGID`` signal the children
    with the worker, which lets running jobs finish for its grace period.
    The child sends the job's outcome, then exits (shutdown hooks). Raising
    ``SystemExit`` inside the task, as before, sent the job dead and left
    the child waiting for a job that never came, until the parent killed it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    held: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: held.append(signum))
    app = load(app_path)
    runtime = TaskRuntime(app)
    runtime.startup()
    busy = False

    def on_sigterm(signum: int, frame: object) -> None:
        if busy:  # the job runs on; the child exits once its outcome is sent
            held.append(signum)
        else:
            _exit_on_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
    if held:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        runtime.shutdown()
        return
    try:
        while True:
            try:
                ctx, token, payload = conn.recv()
            except (EOFError, OSError):  # the worker closed the pipe or died
                return
            reporter = runtime.reporter(ctx.queue, ctx.id, token)
            busy = True
            conn.send(run_task(app, ctx.task, payload, ctx.attempt, ctx, reporter, runtime))
            busy = False
            if held:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                return
    finally:
        runtime.shutdown()


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    # A second SIGTERM must not cut the shutdown hooks short (the parent
    # kills the child if they take too long).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)  # unwinds child_main, so the shutdown hooks run
