"""The opt-in auto-batching producer: ``with app.batching(): task.enqueue(...)``.

For code that enqueues many single jobs in a row (a loop over rows, a web
handler fanning out), one script call and round trip per job is the cost
that dominates (``docs/benchmarks.md``, "Issue 16: enqueue and memory").
Inside a ``batching()`` block the app's :meth:`~scheduler.Scheduler.enqueue`
(and ``task.enqueue``) buffers the built job instead of writing it, and the
buffer is written with the bulk enqueue script -- one call per
:data:`scheduler.defaults.BULK_BATCH` jobs of a queue -- when ``max_jobs``
are buffered and when the block ends.

What changes inside the block (the contract, also in ``docs/design.md``,
"Batching producer"):

* validation is unchanged: hooks run and bad input raises at the
  ``enqueue()`` call, and nothing is buffered for it;
* ``enqueue()`` returns the job's handle *before* the job is written: the job
  exists in Redis (``job.status()``, workers) only after its flush;
* a Redis error surfaces at the flush -- the ``enqueue()`` call that filled
  the buffer, or the end of the block -- and, as for ``enqueue_many``, the
  script calls before the failing one stay written (give job ids to make a
  re-run safe);
* the jobs of one flush share one server enqueue time; their order is kept
  (equal priorities still run in enqueue order), and a job id that already
  exists is left untouched, as always -- but the caller is not told;
* the block ends with a flush even when it ends with an exception: every
  ``enqueue()`` that returned is written unless the flush fails.

The buffer belongs to the block's thread (or asyncio task): a
:class:`contextvars.ContextVar`, so other threads enqueue directly. The
async producer (``aenqueue``) is not batched. Blocks nest: an inner block
flushes into Redis at its own end.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.backend.scripts import EnqueueItem
from scheduler.errors import ValidationError

__all__ = ["Batch", "batching", "current_batch", "write_items"]


def write_items(backend: Backend, by_queue: dict[str, list[EnqueueItem]]) -> None:
    """Write built jobs, queue by queue, one ``enqueue`` script call per
    :data:`scheduler.defaults.BULK_BATCH` jobs, streamed (two calls in
    flight). Each call is atomic; a failure leaves earlier calls written.

    Raises:
        redis.RedisError: a call failed.
    """
    scripts = backend.scripts
    for queue, items in by_queue.items():
        backend.register_queue(queue)
        qk = backend.queue(queue)
        scripts.run_streamed(
            scripts.enqueue_call(qk, items[start : start + defaults.BULK_BATCH])
            for start in range(0, len(items), defaults.BULK_BATCH)
        )


class Batch:
    """The jobs buffered by one ``batching()`` block.

    Args:
        backend: where the jobs are written.
        max_jobs: flush when this many jobs are buffered (>= 1).
    """

    def __init__(self, backend: Backend, max_jobs: int) -> None:
        self.backend = backend
        self.max_jobs = max_jobs
        self._by_queue: dict[str, list[EnqueueItem]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, queue: str, item: EnqueueItem) -> None:
        """Buffer one built job; flush when ``max_jobs`` are buffered.

        Raises:
            redis.RedisError: the flush failed.
        """
        self._by_queue.setdefault(queue, []).append(item)
        self._count += 1
        if self._count >= self.max_jobs:
            self.flush()

    def flush(self) -> None:
        """Write the buffered jobs (see :func:`write_items`); the buffer is
        empty afterwards, also when the write failed.

        Raises:
            redis.RedisError: a script call failed.
        """
        by_queue, self._by_queue, self._count = self._by_queue, {}, 0
        if by_queue:
            write_items(self.backend, by_queue)


_CURRENT: contextvars.ContextVar[Batch | None] = contextvars.ContextVar(
    "scheduler_batch", default=None
)


def current_batch(backend: Backend) -> Batch | None:
    """The innermost active ``batching()`` block of this thread or task that
    writes to ``backend``, or None."""
    batch = _CURRENT.get()
    return batch if batch is not None and batch.backend is backend else None


@contextlib.contextmanager
def batching(backend: Backend, max_jobs: int = defaults.BULK_BATCH) -> Iterator[Batch]:
    """Buffer this thread's (task's) single enqueues to ``backend`` and write
    them in bulk (see the module docstring for the contract).

    Raises:
        ValidationError: ``max_jobs`` is not an int >= 1.
        redis.RedisError: the final flush failed.
    """
    if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
        raise ValidationError(f"max_jobs must be an int >= 1, got {max_jobs!r}")
    batch = Batch(backend, max_jobs)
    token = _CURRENT.set(batch)
    try:
        yield batch
    finally:
        _CURRENT.reset(token)
        batch.flush()
