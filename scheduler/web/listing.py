"""Job listings of one queue and state: order, search and keyset paging.

=============  ===========  ==============================================
state          set read     order
=============  ===========  ==============================================
``ready``      ``ready``    run order (the order workers lease them)
``delayed``    ``delayed``  ETA
``failed``     ``delayed``  retry ETA
``leased``     ``leased``   lease deadline
``dead``       ``dead``     newest first (record expiry, descending)
``succeeded``  ``done``     newest first
``cancelled``  ``done``     newest first
=============  ===========  ==============================================

A page ends at a position ``(score, member)`` of the set, and the next page
starts after that position (:meth:`scheduler.backend.Backend.job_set_after`),
not at a rank: while workers move jobs, a job stays on the page it belongs
to instead of being shown twice or skipped because jobs before it left.

Search matches a case-insensitive substring of the job id, the task name,
or the raw JSON text of the arguments, the metadata or the outcome (error
or result). A page reads at most ``scan_limit`` members; when that is not
enough to fill it, the page says so and the next page continues the scan.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs

from scheduler.admin.common import readable_records
from scheduler.backend import Backend
from scheduler.backend.record import JobRecord, JobState
from scheduler.errors import ValidationError
from scheduler.job import JobInfo, job_info

__all__ = [
    "STATE_VIEWS",
    "JobPage",
    "StateView",
    "decode_cursor",
    "encode_cursor",
    "find_jobs",
    "matching_ids",
]


@attrs.frozen
class StateView:
    """Where the jobs of one state live and in which order they are shown."""

    set_name: str
    state: JobState
    reverse: bool


#: Listable states, in the order the dashboard shows their tabs.
STATE_VIEWS: dict[str, StateView] = {
    "ready": StateView("ready", JobState.READY, False),
    "delayed": StateView("delayed", JobState.DELAYED, False),
    "failed": StateView("delayed", JobState.FAILED, False),
    "leased": StateView("leased", JobState.LEASED, False),
    "dead": StateView("dead", JobState.DEAD, True),
    "succeeded": StateView("done", JobState.SUCCEEDED, True),
    "cancelled": StateView("done", JobState.CANCELLED, True),
}

_CHUNK = 200


@attrs.frozen
class JobPage:
    """One page of a listing.

    Attributes:
        jobs: the jobs shown, in the state's order.
        next_cursor: where the next page starts (:func:`encode_cursor`), or
            None at the end.
        scanned: set members read for this page.
        partial: the scan limit was reached before the page was full.
    """

    jobs: list[JobInfo]
    next_cursor: str | None
    scanned: int
    partial: bool


def encode_cursor(score: float, member: str) -> str:
    """A page position as URL text: ``<score>~<member>``."""
    return f"{score!r}~{member}"


def decode_cursor(text: str | None) -> tuple[float, str] | None:
    """Parse :func:`encode_cursor` text (None or empty: the first page).

    Raises:
        ValidationError: malformed cursor.
    """
    if not text:
        return None
    score, sep, member = text.partition("~")
    try:
        value = float(score)
    except ValueError:
        value = math.nan
    if not sep or not member or math.isnan(value):
        raise ValidationError(f"malformed page cursor {text!r}")
    return value, member


def view(state: str) -> StateView:
    """The :class:`StateView` of ``state``.

    Raises:
        ValidationError: not a listable state.
    """
    try:
        return STATE_VIEWS[state]
    except KeyError:
        raise ValidationError(f"unknown state {state!r}") from None


def matches(rec: JobRecord, needle: str) -> bool:
    """Whether ``needle`` (lower case; "" matches all) occurs in the job id,
    task, arguments, metadata or outcome of ``rec``, ignoring case."""
    if not needle:
        return True
    return any(
        needle in field.lower()
        for field in (rec.job_id, rec.task, rec.payload, rec.meta, rec.outcome)
    )


def _scan(
    backend: Backend, queue: str, sv: StateView, after: tuple[float, str] | None
) -> Iterator[tuple[JobRecord, float, str]]:
    """Records of ``sv``'s set after ``after``, in order, with score and member
    (records of other states in a shared set are yielded too; the caller
    filters)."""
    while True:
        page = backend.job_set_after(queue, sv.set_name, after, _CHUNK, reverse=sv.reverse)
        if not page:
            return
        where = {job_id: (score, member) for job_id, score, member in page}
        ids = [job_id for job_id, _, _ in page]
        for rec in readable_records(backend, queue, ids, chunk=_CHUNK):
            yield rec, *where[rec.job_id]
        after = (page[-1][1], page[-1][2])
        if len(page) < _CHUNK:
            return


def find_jobs(
    backend: Backend,
    queue: str,
    state: str,
    *,
    query: str = "",
    cursor: str | None = None,
    limit: int = 25,
    scan_limit: int = 5000,
) -> JobPage:
    """One page of ``queue``'s jobs in ``state`` matching ``query``.

    Args:
        backend: the storage layer.
        queue: queue name.
        state: one of :data:`STATE_VIEWS`.
        query: search text ("" lists every job).
        cursor: where the page starts (``JobPage.next_cursor``), or None.
        limit: jobs per page (>= 1).
        scan_limit: most set members read for this page.

    Raises:
        ValidationError: unknown state, malformed cursor, bad limit.
        InvalidNameError: malformed queue name.
    """
    if limit < 1:
        raise ValidationError("limit must be >= 1")
    sv = view(state)
    needle = query.strip().lower()
    jobs: list[JobInfo] = []
    scanned = 0
    last: tuple[float, str] | None = None
    for rec, score, member in _scan(backend, queue, sv, decode_cursor(cursor)):
        scanned += 1
        last = (score, member)
        if rec.state is sv.state and matches(rec, needle):
            deadline = score if sv.set_name == "leased" else None
            jobs.append(job_info(queue, rec, deadline))
            if len(jobs) >= limit:
                return JobPage(jobs, encode_cursor(*last), scanned, False)
        if scanned >= scan_limit:
            return JobPage(jobs, encode_cursor(*last), scanned, True)
    return JobPage(jobs, None, scanned, False)


def matching_ids(backend: Backend, queue: str, state: str, query: str = "") -> list[str]:
    """Snapshot of the ids of every job of ``queue`` in ``state`` matching
    ``query`` (for bulk actions, which then go through the scripts; a job
    that moved on meanwhile is reported by the script, not changed twice).

    Raises:
        ValidationError: unknown state.
        InvalidNameError: malformed queue name.
    """
    sv = view(state)
    needle = query.strip().lower()
    return [
        rec.job_id
        for rec, _, _ in _scan(backend, queue, sv, None)
        if rec.state is sv.state and matches(rec, needle)
    ]
