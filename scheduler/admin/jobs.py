"""Job listings in the order that matters for each state.

=============  ===============  =============================================
state          set read         order
=============  ===============  =============================================
``ready``      ``ready``        run order (the order workers will lease them)
``delayed``    ``delayed``      ETA (jobs waiting for their first ETA)
``failed``     ``delayed``      retry ETA (failed attempts waiting to retry)
``leased``     ``leased``       lease deadline
``dead``       ``dead``         dead-record expiry (= time of death)
``succeeded``  ``done``         record expiry (= time of success)
``cancelled``  ``done``         record expiry (= time of cancel)
``done``       ``done``         both of the above (the set ``status`` counts)
=============  ===============  =============================================

Finished lists (:data:`FINISHED_STATES`) are best read newest first
(``reverse=True``; the CLI's default): the set is scored by the record's
expiry, which is the time it finished plus its retention, so the order is
the finishing order among jobs with the same retention.

Reads are plain Redis reads in bounded chunks; a job that changes state
between the two reads of a chunk is skipped (so is a damaged record), so a
listing is a best-effort snapshot while workers run. Bulk operations (:func:`job_ids`) take a
snapshot of ids first, then change jobs only through the Lua scripts.
"""

from __future__ import annotations

from collections.abc import Iterator

from scheduler.admin.common import readable_records
from scheduler.backend import Backend
from scheduler.backend.record import JobState
from scheduler.errors import ValidationError
from scheduler.job import JobInfo, job_info

__all__ = ["FINISHED_STATES", "LISTABLE_STATES", "RETRYABLE_STATES", "job_ids", "list_jobs"]

# state -> (the job set read, the record state listed; None: every state of the set)
_SOURCES: dict[str, tuple[str, JobState | None]] = {
    "ready": ("ready", JobState.READY),
    "delayed": ("delayed", JobState.DELAYED),
    "failed": ("delayed", JobState.FAILED),
    "leased": ("leased", JobState.LEASED),
    "dead": ("dead", JobState.DEAD),
    "succeeded": ("done", JobState.SUCCEEDED),
    "cancelled": ("done", JobState.CANCELLED),
    "done": ("done", None),
}

#: States whose listing is by time finished (newest first is the useful order).
FINISHED_STATES: tuple[str, ...] = ("dead", "succeeded", "cancelled", "done")

#: States :func:`list_jobs` accepts.
LISTABLE_STATES: tuple[str, ...] = tuple(_SOURCES)

#: States whose jobs the ``retry`` script requeues.
RETRYABLE_STATES: tuple[str, ...] = ("dead", "failed", "cancelled", "succeeded")

_CHUNK = 500

#: Sets that hold jobs of two states.
_SHARED_SETS = frozenset({"delayed", "done"})


def _source(state: str) -> tuple[str, JobState | None]:
    try:
        return _SOURCES[state]
    except KeyError:
        raise ValidationError(
            f"unknown state {state!r}; use one of {', '.join(LISTABLE_STATES)}"
        ) from None


def _scan(
    backend: Backend,
    queue: str,
    set_name: str,
    chunk: int,
    start: int = 0,
    *,
    reverse: bool = False,
) -> Iterator[list[tuple[str, float]]]:
    """Chunks of ``(job id, score)`` of one set, in score order (descending
    with ``reverse``), from rank ``start``."""
    while True:
        page = backend.job_set_range(queue, set_name, start, start + chunk - 1, reverse=reverse)
        if not page:
            return
        yield page
        if len(page) < chunk:
            return
        start += chunk


def list_jobs(
    backend: Backend,
    queue: str,
    state: str,
    *,
    limit: int = 50,
    offset: int = 0,
    reverse: bool = False,
) -> list[JobInfo]:
    """Jobs of ``queue`` in ``state``, in that state's order (see module doc).

    Args:
        backend: the storage layer.
        queue: queue name.
        state: one of :data:`LISTABLE_STATES`.
        limit: most jobs returned (>= 1).
        offset: jobs of that state skipped first (>= 0).
        reverse: the opposite order (newest first for finished states).

    Raises:
        ValidationError: unknown state, bad limit/offset, malformed queue name.
    """
    if limit < 1 or offset < 0:
        raise ValidationError("limit must be >= 1 and offset >= 0")
    set_name, wanted = _source(state)
    result: list[JobInfo] = []
    # A set holding one state is read from rank ``offset``, ``limit`` at a time;
    # sets shared by two states (delayed/failed, succeeded/cancelled) are
    # filtered by the record's state, so their offset is counted while reading.
    shared = set_name in _SHARED_SETS and wanted is not None
    skipped = 0 if shared else offset
    chunk = _CHUNK if shared else min(limit, _CHUNK)
    pages = _scan(backend, queue, set_name, chunk, 0 if shared else offset, reverse=reverse)
    for page in pages:
        scores = dict(page)
        for rec in readable_records(backend, queue, [job_id for job_id, _ in page], chunk=chunk):
            if wanted is not None and rec.state is not wanted:
                continue
            if skipped < offset:
                skipped += 1
                continue
            lease_deadline = scores[rec.job_id] if set_name == "leased" else None
            result.append(job_info(queue, rec, lease_deadline))
            if len(result) >= limit:
                return result
    return result


def job_ids(backend: Backend, queue: str, state: str, task: str | None = None) -> list[str]:
    """Snapshot of the ids of ``queue``'s jobs in ``state`` (optionally of one task).

    Used by bulk operations, which then change the jobs through the Lua
    scripts in batches; a job that moved on meanwhile is reported by the
    script, not changed twice. Memory: one id per job of that state.

    Raises:
        ValidationError: unknown state or malformed queue name.
    """
    set_name, wanted = _source(state)
    out: list[str] = []
    filter_state = set_name in _SHARED_SETS and wanted is not None
    for page in _scan(backend, queue, set_name, _CHUNK):
        ids = [job_id for job_id, _ in page]
        if not filter_state and task is None:
            out.extend(ids)
            continue
        for rec in readable_records(backend, queue, ids, chunk=_CHUNK):
            if (wanted is not None and rec.state is not wanted) or (
                task is not None and rec.task != task
            ):
                continue
            out.append(rec.job_id)
    return out
