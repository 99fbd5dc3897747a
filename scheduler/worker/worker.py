"""The worker: lease in batches, run, heartbeat, report, shut down gracefully.

One dispatcher thread (the caller of :meth:`Worker.run`) owns all state
changes: it leases up to the number of free slots per script call, hands
jobs to a thread or process pool, and reports finished jobs in batches (one
``complete`` call per queue per round, one ``fail`` call for failures).
Around it run three helpers: the pool, the :class:`~.waiter.Waiter` (blocking
``BLPOP`` when idle) and the :class:`~.heartbeat.Heartbeater`.

Delivery is at-least-once: a job runs again if its worker dies or loses its
lease before reporting, so tasks should be idempotent.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import logging
import multiprocessing
import os
import queue
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis

from scheduler.errors import ValidationError
from scheduler.record import parse_record
from scheduler.serialization import encode_error
from scheduler.validation import validate_worker_id
from scheduler.worker.execution import LeasedJob, Outcome, init_child, run_in_child, run_task
from scheduler.worker.heartbeat import Heartbeater
from scheduler.worker.waiter import Waiter

if TYPE_CHECKING:
    from scheduler.app import Scheduler

__all__ = ["Worker", "WorkerObserver"]

log = logging.getLogger("scheduler.worker")


class WorkerObserver(Protocol):
    """Callbacks a :class:`Worker` makes about its jobs (e.g. for metrics).

    All are called on the worker's dispatcher thread, so they must be quick
    and must not block; an exception they raise is logged and ignored.

    * ``on_leased(job)``: a job was leased and handed to the pool.
    * ``on_finished(job, outcome, duration)``: a job's report was applied;
      ``outcome`` is ``"succeeded"``, ``"retried"`` (failed, will retry),
      ``"dead"`` (failed, dead-lettered) or ``"refused"`` (the lease was lost,
      the result was not recorded); ``duration`` is the run time in seconds.
    * ``on_released(job)``: a job was given back to its queue at shutdown.
    * ``on_lease_lost(job)``: the worker found the job's lease no longer
      valid (expired and requeued, cancelled, purged) when reporting or
      releasing it.
    """

    def on_leased(self, job: LeasedJob) -> None: ...

    def on_finished(self, job: LeasedJob, outcome: str, duration: float) -> None: ...

    def on_released(self, job: LeasedJob) -> None: ...

    def on_lease_lost(self, job: LeasedJob) -> None: ...


class Worker:
    """Runs jobs from one or more queues.

    Args:
        app: the scheduler whose tasks this worker runs.
        queues: queue names, in priority order for ``queue_order="strict"``;
            default: the app's default queue.
        concurrency: jobs run at once (pool size), >= 1.
        pool: ``"thread"`` (default) or ``"process"`` (CPU-bound tasks; needs
            ``app_path`` so children can import the app).
        app_path: ``"package.module:app"`` import path of ``app``.
        queue_order: ``"strict"`` (earlier queues first) or ``"weighted"``
            (random order each round, by ``queue_weights``).
        queue_weights: queue -> relative weight for ``"weighted"`` (default 1).
        grace: seconds to let running jobs finish on shutdown before their
            leases are released back to ready.
        max_block: longest single idle block on Redis, seconds.
        worker_id: unique id (default ``host:pid:random``).
        observer: optional :class:`WorkerObserver` told about leases and
            outcomes (e.g. :class:`scheduler.metrics.WorkerMetrics`); None
            costs nothing.

    Raises:
        ValidationError: bad arguments.
    """

    def __init__(
        self,
        app: Scheduler,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = 10,
        pool: str = "thread",
        app_path: str | None = None,
        queue_order: str = "strict",
        queue_weights: dict[str, float] | None = None,
        grace: float = 30.0,
        max_block: float = 30.0,
        worker_id: str | None = None,
        observer: WorkerObserver | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValidationError("concurrency must be >= 1")
        if pool not in ("thread", "process"):
            raise ValidationError("pool must be 'thread' or 'process'")
        if pool == "process" and not app_path:
            raise ValidationError("pool='process' needs app_path ('package.module:app')")
        if queue_order not in ("strict", "weighted"):
            raise ValidationError("queue_order must be 'strict' or 'weighted'")
        self.app = app
        self.queues = list(queues or [app.default_queue])
        if not self.queues or len(set(self.queues)) != len(self.queues):
            raise ValidationError("queues must be a non-empty list of distinct names")
        self._keys = {q: app.queue_keys(q) for q in self.queues}
        self.concurrency = concurrency
        self.pool_kind = pool
        self.app_path = app_path
        self.queue_order = queue_order
        self.queue_weights = {q: float((queue_weights or {}).get(q, 1.0)) for q in self.queues}
        if any(not w > 0 for w in self.queue_weights.values()):
            raise ValidationError("queue weights must be > 0")
        self.grace = grace
        self.max_block = max_block
        host = "".join(c if c.isalnum() or c in "-." else "-" for c in socket.gethostname())
        self.worker_id = validate_worker_id(
            worker_id or f"{host or 'host'}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._inflight: dict[tuple[str, str], LeasedJob] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stop_deadline: float | None = None
        self._requests = itertools.count()
        self._pending_ok: list[tuple[LeasedJob, Outcome]] = []
        self._pending_fail: list[tuple[LeasedJob, Outcome]] = []
        self._executor: cf.Executor | None = None
        self.processed = 0
        self.observer = observer

    # -- public control -----------------------------------------------------

    def stop(self, grace: float | None = None) -> None:
        """Stop leasing; let running jobs finish for ``grace`` seconds (default
        :attr:`grace`), then release the rest. Thread-safe; returns at once."""
        if not self._stopping.is_set():
            self._stop_deadline = time.monotonic() + (self.grace if grace is None else grace)
            self._stopping.set()
        else:  # a second stop: release now
            self._stop_deadline = time.monotonic()
        self._inbox.put(("stop", None))

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT call :meth:`stop`; a second signal releases at once.
        Must be called from the main thread."""

        def handler(signum: int, _frame: object) -> None:
            log.info("received %s: stopping", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def snapshot(self) -> list[LeasedJob]:
        """The jobs in flight now (a copy)."""
        with self._lock:
            return list(self._inflight.values())

    # -- main loop ----------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop` is called (or a signal, if handlers are installed)."""
        self._executor = self._make_executor()
        heart = Heartbeater(
            self.app.scripts,
            self._keys.__getitem__,
            self.snapshot,
            self.app.keys,
            self.worker_id,
            {
                "queues": ",".join(self.queues),
                "concurrency": str(self.concurrency),
                "pool": self.pool_kind,
                "started": repr(time.time()),
            },
        )
        waiter = Waiter(
            self.app.redis, [k.wake for k in self._keys.values()], self._inbox, self.max_block
        )
        for q in self.queues:
            self.app._register_queue(q)
        log.info(
            "worker %s started: queues=%s concurrency=%d pool=%s",
            self.worker_id,
            ",".join(self.queues),
            self.concurrency,
            self.pool_kind,
        )
        heart.start()
        try:
            heart.publish(0)
            self._loop(waiter, heart)
        finally:
            waiter.close()
            heart.stop()
            self._shutdown_executor()
            log.info("worker %s stopped after %d jobs", self.worker_id, self.processed)

    def _loop(self, waiter: Waiter, heart: Heartbeater) -> None:
        may_have_work = True
        next_due = 0.0  # monotonic time of the next ETA / lease deadline
        errors = 0
        while True:
            try:
                self._flush()
                heart.processed = self.processed
                if self._stopping.is_set():
                    if not self._inflight:
                        return
                    if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                        self._release_all()
                        return
                free = self.concurrency - len(self._inflight)
                now = time.monotonic()
                if not self._stopping.is_set() and free > 0 and (may_have_work or now >= next_due):
                    got, wake_ms = self._lease(free)
                    if got:
                        heart.notify()
                    may_have_work = got == free or wake_ms == 0
                    next_due = (
                        now + wake_ms / 1000
                        if wake_ms > 0
                        else (now if wake_ms == 0 else float("inf"))
                    )
                    if may_have_work and got > 0:
                        continue
                errors = 0
            except (redis.RedisError, OSError) as exc:
                errors += 1
                pause = min(5.0, 0.1 * 2**errors)
                log.error("redis error in worker loop: %s; retrying in %.1f s", exc, pause)
                self._drain(pause)
                may_have_work = True
                continue
            free = self.concurrency - len(self._inflight)
            if not self._stopping.is_set() and free > 0:
                waiter.request()
            timeout = self._wait_timeout(next_due, free)
            kind, data = self._next_event(timeout)
            if kind == "wake":
                if self.concurrency - len(self._inflight) > 0:
                    may_have_work = True
                elif data is not None:  # full: hand the marker on to another worker
                    self._pass_on_wake(str(data))
            elif kind == "timeout":
                may_have_work = may_have_work or time.monotonic() >= next_due

    def _wait_timeout(self, next_due: float, free: int) -> float | None:
        waits = []
        if free > 0 and not self._stopping.is_set() and next_due != float("inf"):
            waits.append(max(0.0, next_due - time.monotonic()))
        if self._stopping.is_set() and self._stop_deadline is not None:
            waits.append(max(0.0, self._stop_deadline - time.monotonic()))
        return min(waits) if waits else None

    def _next_event(self, timeout: float | None) -> tuple[str, Any]:
        """Wait for the first inbox event, then take every other one queued."""
        try:
            first = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return ("timeout", None)
        result = self._handle(first)
        while True:
            try:
                event = self._inbox.get_nowait()
            except queue.Empty:
                return result
            handled = self._handle(event)
            if handled[0] == "wake":
                result = handled
        return result

    def _handle(self, event: tuple[str, Any]) -> tuple[str, Any]:
        kind, data = event
        if kind == "done":
            job, outcome = data
            (self._pending_ok if outcome.ok else self._pending_fail).append((job, outcome))
        return event

    def _drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                self._handle(self._inbox.get(timeout=left))
            except queue.Empty:
                return

    def _pass_on_wake(self, wake_key: str) -> None:
        try:
            self.app.redis.lpush(wake_key, "1")
        except (redis.RedisError, OSError) as exc:
            log.warning("could not pass on a wake-up: %s", exc)

    # -- leasing ------------------------------------------------------------

    def _queue_round(self) -> list[str]:
        if self.queue_order == "strict" or len(self.queues) == 1:
            return self.queues
        # Weighted random order without replacement (Efraimidis & Spirakis 2006).
        return sorted(
            self.queues,
            key=lambda q: random.random() ** (1.0 / self.queue_weights[q]),
            reverse=True,
        )

    def _lease(self, free: int) -> tuple[int, int]:
        """Lease up to ``free`` jobs across queues; returns (count, min wake ms)."""
        got = 0
        wake = -1
        for q in self._queue_round():
            want = free - got
            if want <= 0:
                break
            request = f"{self.worker_id}:{next(self._requests)}"
            reply = self.app.scripts.lease(self._keys[q], want, self.worker_id, request)
            if reply.wake_ms >= 0:
                wake = reply.wake_ms if wake < 0 else min(wake, reply.wake_ms)
            for job_id, text in reply.jobs:
                self._start(q, job_id, text)
                got += 1
        return got, wake

    def _start(self, queue_name: str, job_id: str, text: str) -> None:
        rec = parse_record(job_id, text)
        job = LeasedJob(
            queue=queue_name,
            id=job_id,
            token=rec.token,
            task=rec.task,
            payload=rec.payload,
            attempt=rec.attempts,
            options=rec.options,
            priority=rec.priority,
            enqueued_ms=rec.enqueued_ms,
            started=time.monotonic(),
        )
        with self._lock:
            self._inflight[(queue_name, job_id)] = job
        if self.observer is not None:
            self._observe("on_leased", job)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "job %s task=%s queue=%s attempt=%d/%d started (priority %g)",
                job_id,
                job.task,
                queue_name,
                job.attempt,
                job.options.max_attempts,
                job.priority,
            )
        assert self._executor is not None
        try:
            if self.pool_kind == "process":
                future = self._executor.submit(run_in_child, job.task, job.payload, job.attempt)
            else:
                future = self._executor.submit(
                    run_task, self.app, job.task, job.payload, job.attempt
                )
        except RuntimeError as exc:  # pool shut down or broken
            self._inbox.put(("done", (job, _crash_outcome(exc, job))))
            return
        future.add_done_callback(functools.partial(self._on_done, job))

    def _on_done(self, job: LeasedJob, future: cf.Future[Outcome]) -> None:
        try:
            outcome = future.result()
        except BaseException as exc:  # the pool itself failed (e.g. a child died)
            outcome = _crash_outcome(exc, job)
            if isinstance(exc, cf.process.BrokenProcessPool):
                self._inbox.put(("broken", None))
        self._inbox.put(("done", (job, outcome)))

    # -- reporting ----------------------------------------------------------

    def _flush(self) -> None:
        """Report finished jobs: one complete call per queue, one fail call per queue."""
        if self._pending_ok:
            batch, self._pending_ok = self._pending_ok, []
            try:
                self._report(batch, ok=True)
            except BaseException:
                self._pending_ok = batch + self._pending_ok
                raise
        if self._pending_fail:
            batch, self._pending_fail = self._pending_fail, []
            try:
                self._report(batch, ok=False)
            except BaseException:
                self._pending_fail = batch + self._pending_fail
                raise
        if self.pool_kind == "process" and _is_broken(self._executor):
            log.warning("process pool broke (a child died); starting a new one")
            self._shutdown_executor()
            self._executor = self._make_executor()

    def _report(self, batch: list[tuple[LeasedJob, Outcome]], *, ok: bool) -> None:
        by_queue: dict[str, list[tuple[LeasedJob, Outcome]]] = {}
        for job, outcome in batch:
            by_queue.setdefault(job.queue, []).append((job, outcome))
        for q, items in by_queue.items():
            if ok:
                codes = self.app.scripts.complete(
                    self._keys[q], [(j.id, j.token, o.text) for j, o in items]
                )
            else:
                codes = self.app.scripts.fail(
                    self._keys[q],
                    [(j.id, j.token, o.text, self._retry_delay_ms(j, o)) for j, o in items],
                )
            for (job, outcome), code in zip(items, codes, strict=True):
                self._finish(job, outcome, code)

    def _retry_delay_ms(self, job: LeasedJob, outcome: Outcome) -> int:
        if not outcome.retryable:
            return -1
        task = self.app.tasks.get(job.task)
        backoff = task.backoff if task is not None else self.app.backoff
        return round(backoff.delay(job.attempt) * 1000)

    def _finish(self, job: LeasedJob, outcome: Outcome, code: int) -> None:
        with self._lock:
            self._inflight.pop((job.queue, job.id), None)
        self.processed += 1
        took = time.monotonic() - job.started
        if self.observer is not None:
            self._observe_finish(job, outcome, code, took)
        where = f"job {job.id} task={job.task} queue={job.queue} attempt={job.attempt}"
        if code <= 0:
            log.warning(
                "%s finished in %.3fs but its result was refused: %s",
                where,
                took,
                "job no longer exists"
                if code < 0
                else "lease lost (expired, cancelled or leased again)",
            )
        elif not log.isEnabledFor(logging.INFO):
            return
        elif outcome.ok:
            log.info("%s succeeded in %.3fs", where, took)
        elif code == 1:
            log.info("%s failed in %.3fs, will retry: %s", where, took, outcome.error)
        else:
            log.info("%s failed in %.3fs, dead: %s", where, took, outcome.error)

    def _release_all(self) -> None:
        """Give every in-flight job back to its queue (shutdown after the grace period)."""
        jobs = self.snapshot()
        by_queue: dict[str, list[LeasedJob]] = {}
        for job in jobs:
            by_queue.setdefault(job.queue, []).append(job)
        for q, items in by_queue.items():
            codes = self.app.scripts.release(self._keys[q], [(j.id, j.token) for j in items])
            for job, code in zip(items, codes, strict=True):
                if self.observer is not None:
                    self._observe("on_released" if code >= 1 else "on_lease_lost", job)
                log.info(
                    "job %s task=%s queue=%s attempt=%d released (%s)",
                    job.id,
                    job.task,
                    q,
                    job.attempt,
                    "back to ready" if code >= 1 else "lease already lost",
                )
        with self._lock:
            self._inflight.clear()

    # -- observer ---------------------------------------------------------

    def _observe(self, callback: str, *args: Any) -> None:
        try:
            getattr(self.observer, callback)(*args)
        except Exception:
            log.exception("worker observer %s failed", callback)

    def _observe_finish(self, job: LeasedJob, outcome: Outcome, code: int, took: float) -> None:
        if code <= 0:
            self._observe("on_lease_lost", job)
            name = "refused"
        elif outcome.ok:
            name = "succeeded"
        elif code == 1:
            name = "retried"
        elif code == 2:
            name = "dead"
        else:  # 3: applied by an earlier run of the same call; same rule as fail.lua
            retry = outcome.retryable and job.attempt < job.options.max_attempts
            name = "retried" if retry else "dead"
        self._observe("on_finished", job, name, took)

    # -- pools --------------------------------------------------------------

    def _make_executor(self) -> cf.Executor:
        if self.pool_kind == "process":
            assert self.app_path is not None
            return cf.ProcessPoolExecutor(
                max_workers=self.concurrency,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=init_child,
                initargs=(self.app_path,),
            )
        return cf.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="scheduler-job"
        )

    def _shutdown_executor(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        if isinstance(executor, cf.ProcessPoolExecutor):
            for proc in list(getattr(executor, "_processes", {}).values()):
                proc.terminate()


def _is_broken(executor: cf.Executor | None) -> bool:
    return bool(getattr(executor, "_broken", False))


def _crash_outcome(exc: BaseException, job: LeasedJob) -> Outcome:
    message = f"worker pool failed while running the job: {type(exc).__name__}: {exc}"
    return Outcome(
        ok=False,
        text=encode_error(message, type(exc).__name__, "", job.attempt),
        error=message,
        retryable=True,
    )
