"""The process runner: one child process per slot, each killed and replaced
on its own.

Why not ``concurrent.futures.ProcessPoolExecutor`` (or loky): when one of its
children dies, the whole executor breaks (``BrokenProcessPool``) and every
job in flight fails with it, and its public API cannot kill the child running
one job (an execution timeout). Here each of the ``size`` slots is a thread
owning at most one child (``multiprocessing``'s public ``Process``,
``Pipe`` and ``connection.wait``, spawn start method): it sends the child a
job, waits for the reply, the child's exit or the job's timeout, and

* reply: reports the outcome;
* the child died (OOM killer, ``kill -9``, a crash in C code): reports a
  retryable failure for *its* job only (the attempt counts; retried or dead
  by ``max_attempts``) and starts a new child for the next job;
* timeout: kills the child, reports a
  :class:`~scheduler.errors.JobTimeoutError` failure, starts a new child.

Each slot starts its child when the pool starts, and a replacement as soon
as a child dies or is killed, rather than when the next job comes: a job
run by a child still starting counts the child's start-up (0.4 s for the
test app on an idle machine, more under load: a new interpreter imports the
app) in its duration -- logged, and learned as the task's run time
(``time="auto"``). A child tells its slot when it is ready (the app
imported, its start-up hooks run: :data:`~.child.READY` on its pipe); the
slot takes no job before, and the runner calls ``on_ready`` once every
slot's first child is ready or died starting: the worker leases nothing
before (bounded; :meth:`~.worker.Worker.run`), so no job waits for a child
of the worker's own start-up either. A child that died while idle or
starting (the app does not import in it, say) is replaced when the next job
comes, without charging it.

Children import the app once, with ``load(app_path)`` (a module-level
function, pickled by reference), run the app's start-up hooks, and run its
shutdown hooks when terminated (SIGTERM; a child running a job finishes it
first, so the worker kills one still running at shutdown); each job goes to its child with
its :class:`~scheduler.context.JobContext` (built here, in the parent), so
:func:`~scheduler.context.current_job` works there too. Children ignore
SIGINT: a Ctrl-C on the terminal reaches the whole process group, and
stopping is the worker's decision (it terminates its children on shutdown).
A child a SIGINT kills while it starts, before it ignores SIGINT, never ran
its job: the job goes to a new child (at most ``_STARTS`` in all).

Each child also gets the read end of a "lifeline" pipe whose write end only
the worker process holds: when the worker dies (``kill -9``, a crash) the
child reads EOF and, if it runs a job, exits at once (``os._exit``), since
nothing renews that job's lease any more and another worker will run it
again; an idle child exits through its shutdown hooks (EOF on its job pipe).
Not ``prctl(PR_SET_PDEATHSIG)``: Linux-only, and it fires when the *thread*
that spawned the child exits (here a slot thread, at every shutdown).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from scheduler.worker.child import child_main
from scheduler.worker.execution import AppLoader, LeasedJob, Outcome, job_context_of
from scheduler.worker.pool import Report, crash_outcome, timeout_outcome

__all__ = ["ProcessRunner"]

#: Children a job is given to at most, when SIGINT kills them as they start.
_STARTS = 3

log = logging.getLogger("scheduler.worker")


class _Child:
    """One child process and the parent's end of its pipe."""

    def __init__(self, load: AppLoader, app_path: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, theirs = ctx.Pipe()
        # Only this process holds the write end (spawned children inherit
        # only the fds passed to them): the child reads EOF once it is gone.
        lifeline, self._lifeline = ctx.Pipe(duplex=False)
        self.process: BaseProcess = ctx.Process(
            target=child_main,
            args=(theirs, load, app_path, lifeline),
            name="scheduler-child",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        lifeline.close()
        #: Running a job (set by its slot): a SIGTERM would wait for the job.
        self.busy = False

    def await_ready(self) -> None:
        """Wait until the child sent :data:`~.child.READY` (its start-up is
        done) or died (a failed start-up, or :meth:`stop` -- a shutdown);
        one that died is reaped (``process.is_alive()`` is False)."""
        with contextlib.suppress(OSError, EOFError):  # the pipe broke: it is gone
            if self.conn in wait([self.conn, self.process.sentinel]):
                self.conn.recv()  # READY, a child's first message
                return
        self.process.join(5)  # it closed its pipe as it exited

    def stop(self, kill: bool = False) -> None:
        """End the child (SIGKILL if ``kill``, else SIGTERM) and wait for it."""
        with contextlib.suppress(OSError, ValueError):
            if self.process.is_alive():
                self.process.kill() if kill else self.process.terminate()
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(5)
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError):
            self._lifeline.close()


class ProcessRunner:
    """``size`` child processes (spawned) running jobs of the app at
    ``app_path`` (see the module docstring).

    Args:
        app_path: ``"package.module:app"``.
        size: number of children (slots).
        report: receives each finished job and its outcome.
        load: imports the app in a child (module-level, picklable).
        worker_id: named in the jobs' contexts.
        on_ready: called once (from a slot thread) when every slot's first
            child is ready or died while starting (:attr:`ready`).
    """

    def __init__(
        self,
        app_path: str,
        size: int,
        report: Report,
        load: AppLoader,
        worker_id: str = "",
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._worker_id = worker_id
        self._app_path = app_path
        self._load = load
        self._report = report
        self._size = size
        self._jobs: queue.SimpleQueue[LeasedJob | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._children: set[_Child] = set()
        #: Children started to replace one that died or timed out.
        self.replaced = 0
        self._on_ready = on_ready
        self._starting = size  # slots whose first child is not ready yet
        for i in range(size):
            threading.Thread(target=self._slot, name=f"scheduler-slot-{i}", daemon=True).start()

    @property
    def broken(self) -> bool:
        """Never: a dead child is replaced by its slot."""
        return False

    @property
    def ready(self) -> bool:
        """True once every slot's first child is ready (or died while
        starting, or the runner was shut down meanwhile)."""
        return self._starting == 0

    def submit(self, job: LeasedJob) -> None:
        """Run ``job`` in the next free child."""
        self._jobs.put(job)

    def shutdown(self) -> None:
        """Stop the slots and terminate the children (does not wait for jobs;
        their results are not reported). A child still running a job (past
        the grace period; its lease was released) is killed: a terminated
        child finishes its job first."""
        self._closed.set()
        for _ in range(self._size):
            self._jobs.put(None)
        with self._lock:
            children = list(self._children)
        for child in children:
            child.stop(kill=child.busy)

    def _spawn(self) -> _Child:
        child = _Child(self._load, self._app_path)
        with self._lock:
            self._children.add(child)
        if self._closed.is_set():  # shut down meanwhile: do not leave it behind
            child.stop()
        return child

    def _drop(self, child: _Child, kill: bool) -> None:
        child.stop(kill)
        with self._lock:
            self._children.discard(child)

    def _started(self) -> None:
        """A slot's first child is ready (or died, or the runner closed)."""
        with self._lock:
            self._starting -= 1
            done = self._starting == 0
        if done and self._on_ready is not None:
            self._on_ready()

    def _slot(self) -> None:
        child: _Child | None = None
        first = True
        try:
            while True:
                if child is None and not self._closed.is_set():
                    # Started and ready before its job comes: the job's duration
                    # (logged, learned for time="auto") excludes the start-up.
                    child = self._spawn()
                    child.await_ready()
                if first:
                    first = False
                    self._started()
                if (job := self._jobs.get()) is None:
                    break
                if child is not None and not child.process.is_alive():
                    self._drop(child, kill=False)  # died while idle: not this job's fault
                    child = None
                for start in range(1, _STARTS + 1):
                    if child is None:
                        child = self._spawn()
                        child.await_ready()
                    outcome, alive = self._run(child, job, last=start == _STARTS)
                    if not alive:
                        self._drop(child, kill=True)
                        child = None
                        self.replaced += 1
                    if outcome is not None:
                        break
                if self._closed.is_set():
                    return
                assert outcome is not None  # the last start answers one
                self._report(job, outcome)
        except BaseException as exc:  # pragma: no cover - the slot must never die silently
            log.exception("process pool slot failed: %s", exc)
            raise
        finally:
            if child is not None:
                self._drop(child, kill=False)

    def _run(self, child: _Child, job: LeasedJob, last: bool) -> tuple[Outcome | None, bool]:
        """Run ``job`` in ``child``; returns its outcome and whether the child
        may run more jobs. The outcome is None (unless ``last``) when a
        SIGINT killed the child: only possible before its own code ignored
        SIGINT, so the job never ran -- a Ctrl-C on the terminal reaches the
        process group while a child still starts; the job goes to a new one."""
        timeout = None if job.options.timeout_ms is None else job.options.timeout_ms / 1000
        try:
            child.busy = True
            child.conn.send((job_context_of(job, self._worker_id), job.token, job.payload))
            ready = wait([child.conn, child.process.sentinel], timeout)
            if child.conn in ready:
                reply: Outcome = child.conn.recv()
                return reply, True
        except (OSError, EOFError):
            ready = [child.process.sentinel]  # the pipe broke: the child is gone
        finally:
            child.busy = False
        if not ready:
            if not self._closed.is_set():
                log.warning(
                    "job %s task=%s queue=%s attempt=%d timed out after %g s; "
                    "killing its child process",
                    job.id,
                    job.task,
                    job.queue,
                    job.attempt,
                    timeout,
                )
            return timeout_outcome(job), False
        child.process.join(5)
        code = child.process.exitcode
        if code == -signal.SIGINT and not last:
            if not self._closed.is_set():
                log.warning(
                    "child process %s was interrupted (SIGINT) while starting, before "
                    "job %s ran; running it in a new one",
                    child.process.pid,
                    job.id,
                )
            return None, False
        if not self._closed.is_set():
            log.error(
                "child process %s running job %s died (exit code %s); starting a new one",
                child.process.pid,
                job.id,
                code,
            )
        return crash_outcome(f"child process exited with code {code}", job), False
