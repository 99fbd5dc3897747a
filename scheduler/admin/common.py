"""Record reading shared by the admin read-side modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from scheduler.backend import Backend
from scheduler.backend.record import JobRecord, parse_record
from scheduler.backend.replies import chunks

__all__ = ["RECORD_CHUNK", "readable_records"]

#: Records read per round trip.
RECORD_CHUNK = 500


def readable_records(
    backend: Backend, queue: str, job_ids: Sequence[str], *, chunk: int = RECORD_CHUNK
) -> Iterator[JobRecord]:
    """The records of ``job_ids`` in ``queue``, in order, ``chunk`` per round trip.

    A job whose record is gone (it moved on or expired since its id was
    read) or damaged (not a readable record) is skipped: one bad record
    never stops a listing.

    Raises:
        InvalidNameError: a malformed queue name.
    """
    for part in chunks(job_ids, chunk):
        for job_id, raw in zip(part, backend.raw_records(queue, part), strict=True):
            if raw is None:
                continue
            try:
                yield parse_record(job_id, raw)
            except (ValueError, KeyError):  # unreadable record: skipped
                continue
