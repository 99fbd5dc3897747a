"""The process-pool child's side (:func:`child_main`): it imports the app
once, then runs each job the parent (:mod:`scheduler.worker.children`) sends
it over a pipe with :func:`~.execution.run_task`, and exits when the parent
stops it -- or is gone (see ``lifeline``).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from scheduler.worker.execution import AppLoader, run_task
from scheduler.worker.runtime import TaskRuntime

__all__ = ["READY", "child_main"]

#: What a child sends on its pipe once the app is imported and its start-up
#: hooks ran, before it takes its first job.
READY = "ready"

log = logging.getLogger("scheduler.worker")


def child_main(
    conn: Connection, load: AppLoader, app_path: str, lifeline: Connection | None = None
) -> None:
    """Entry point of a process-pool child (:mod:`scheduler.worker.children`):
    import the app once with ``load(app_path)``, run its start-up hooks, send
    :data:`READY` on ``conn`` (the parent leases no job for it before), then
    answer each ``(context, token, payload)`` received on ``conn`` with the
    :class:`Outcome` of :func:`run_task`, until the parent closes the pipe
    or terminates the child (SIGTERM); the shutdown hooks run then.

    ``lifeline``: the read end of a pipe whose write end only the parent
    holds, so it reads EOF the moment the parent is gone (``kill -9``, a
    crash). A thread blocked on it (no polling) then ends a child running a
    job at once (``os._exit``, status 1, one WARNING line, no shutdown
    hooks): the parent can no longer renew the job's lease, so another
    worker runs it again once it expires, and the orphan must not run it
    concurrently (nor die later of a broken pipe). An idle child, or one
    still starting, never starts another job: it reads EOF on ``conn`` and
    returns (shutdown hooks). A child whose job ends just as the parent
    dies returns the same way, without sending the outcome.

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
    busy = orphaned = False
    job_id = ""
    orphan_lock = threading.Lock()
    parent = os.getppid()

    def on_parent_gone() -> None:
        nonlocal orphaned
        with orphan_lock:
            orphaned = True
            if busy:
                log.warning(
                    "worker process %d is gone: child process %d abandons job %s "
                    "(run again once its lease expires)",
                    parent,
                    os.getpid(),
                    job_id,
                )
                os._exit(1)

    if lifeline is not None:
        threading.Thread(
            target=_watch, args=(lifeline, on_parent_gone), name="scheduler-lifeline", daemon=True
        ).start()
    app = load(app_path)
    runtime = TaskRuntime(app)
    runtime.startup()

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
        try:
            conn.send(READY)
        except OSError:  # the parent is gone already
            return
        while True:
            try:
                ctx, token, payload = conn.recv()
            except (EOFError, OSError):  # the worker closed the pipe or died
                return
            with orphan_lock:
                if orphaned:  # a job sent just before the parent died
                    return
                busy, job_id = True, ctx.id
            reporter = runtime.reporter(ctx.queue, ctx.id, token)
            outcome = run_task(app, ctx.task, payload, ctx.attempt, ctx, reporter, runtime)
            try:
                conn.send(outcome)
            except OSError:  # the parent died as the job ended
                return
            busy = False
            if held:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                return
    finally:
        runtime.shutdown()


def _watch(lifeline: Connection, gone: Callable[[], None]) -> None:
    """Call ``gone()`` once ``lifeline`` reads EOF (the parent, which never
    writes to it, is gone)."""
    try:
        while True:
            lifeline.recv_bytes()
    except (EOFError, OSError):
        gone()


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    # A second SIGTERM must not cut the shutdown hooks short (the parent
    # kills the child if they take too long).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(0)  # unwinds child_main, so the shutdown hooks run
