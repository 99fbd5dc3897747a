"""Bulk retry and cancel of a filtered set of jobs, with progress.

The ids are a snapshot (:func:`scheduler.web.listing.matching_ids`); the
jobs are then changed only through the scripts -- ``retry`` in batches of
:data:`BATCH` ids per call, ``cancel`` one call per job -- in a background
thread, so the page can show progress while it runs. A job that moved on
since the snapshot is counted as skipped (the script refuses it), one that
is gone as gone.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import attrs

from scheduler.backend import Backend
from scheduler.backend.codes import RetryCode
from scheduler.errors import JobNotFoundError
from scheduler.job import Job

__all__ = ["BATCH", "BULK_ACTIONS", "BulkOperation", "BulkRunner"]

log = logging.getLogger("scheduler.web")

#: Job ids per ``retry`` script call.
BATCH = 500

#: Bulk actions the dashboard offers.
BULK_ACTIONS = ("retry", "cancel")

#: Finished operations remembered (for their progress page).
_KEEP = 50


@attrs.define
class BulkOperation:
    """Progress of one bulk action (read while it runs).

    Attributes:
        id: operation number (in this dashboard process).
        action: ``"retry"`` or ``"cancel"``.
        queue, state, query: the filtered set it acts on.
        total: jobs in the snapshot.
        done: jobs handled so far.
        changed: retried or cancelled.
        skipped: had changed state (not retryable / already finished).
        gone: no longer existed.
        finished: all handled (or it failed).
        error: why it stopped early, or "".
        actor: who started it (named in the audit events).
    """

    id: int
    action: str
    queue: str
    state: str
    query: str
    total: int
    done: int = 0
    changed: int = 0
    skipped: int = 0
    gone: int = 0
    finished: bool = False
    error: str = ""
    actor: str = ""

    @property
    def percent(self) -> int:
        """Progress, 0-100."""
        return 100 if self.total == 0 else int(100 * self.done / self.total)


def _retry(backend: Backend, op: BulkOperation, ids: Sequence[str]) -> None:
    qk = backend.queue(op.queue)
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        for code in backend.scripts.retry(qk, batch, actor=op.actor):
            if code == RetryCode.REQUEUED:
                op.changed += 1
            elif code == RetryCode.NOT_RETRYABLE:
                op.skipped += 1
            else:
                op.gone += 1
        op.done += len(batch)


def _cancel(backend: Backend, op: BulkOperation, ids: Sequence[str]) -> None:
    for job_id in ids:
        try:
            job = Job(backend, job_id, op.queue)
            if job.cancel("cancelled from the dashboard", actor=op.actor):
                op.changed += 1
            else:
                op.skipped += 1
        except JobNotFoundError:
            op.gone += 1
        op.done += 1


_WORK: dict[str, Callable[[Backend, BulkOperation, Sequence[str]], None]] = {
    "retry": _retry,
    "cancel": _cancel,
}


@attrs.define
class BulkRunner:
    """Starts bulk operations in background threads and keeps their progress."""

    _ops: OrderedDict[int, BulkOperation] = attrs.field(factory=OrderedDict)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def start(
        self,
        backend: Backend,
        action: str,
        queue: str,
        state: str,
        query: str,
        ids: list[str],
        *,
        actor: str = "",
    ) -> BulkOperation:
        """Begin ``action`` on ``ids`` in a daemon thread; returns its progress
        record. ``actor`` is named in the audit events of the changes.

        Raises:
            ValueError: unknown action.
        """
        work = _WORK.get(action)
        if work is None:
            raise ValueError(f"unknown bulk action {action!r}")
        with self._lock:
            op = BulkOperation(next(self._ids), action, queue, state, query, len(ids), actor=actor)
            self._ops[op.id] = op
            while len(self._ops) > _KEEP:
                self._ops.popitem(last=False)

        def run() -> None:
            try:
                work(backend, op, ids)
            except Exception as exc:  # reported on the progress page, never lost
                log.exception("bulk %s on queue %s failed", action, queue)
                op.error = f"{type(exc).__name__}: {exc}"
            finally:
                op.finished = True

        threading.Thread(target=run, name=f"scheduler-web-bulk-{op.id}", daemon=True).start()
        return op

    def get(self, op_id: int) -> BulkOperation | None:
        """The operation numbered ``op_id``, if still remembered."""
        with self._lock:
            return self._ops.get(op_id)
