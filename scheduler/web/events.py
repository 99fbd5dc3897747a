"""Job timelines from a queue's event stream (bounded reads)."""

from __future__ import annotations

from collections.abc import Iterable

from scheduler.admin.events import Event, expand_entry
from scheduler.backend import Backend

__all__ = ["TIMELINE_SCAN", "job_events", "lease_starts"]

#: Stream entries read (newest first) to build a timeline: a job's events
#: older than the last this many of its queue are not shown.
TIMELINE_SCAN = 5000


def _recent(backend: Backend, queue: str, scan: int) -> list[Event]:
    """The last ``scan`` entries of ``queue``'s stream as events, oldest first."""
    entries = backend.recent_event_entries([queue], scan)[0]
    events = [e for entry in reversed(entries) for e in expand_entry(queue, entry.id, entry.fields)]
    return events


def job_events(backend: Backend, queue: str, job_id: str, scan: int = TIMELINE_SCAN) -> list[Event]:
    """Events of one job among the last ``scan`` entries of its queue's stream,
    oldest first."""
    return [e for e in _recent(backend, queue, scan) if e.job == job_id]


def lease_starts(
    backend: Backend, queue: str, job_ids: Iterable[str], scan: int = 2000
) -> dict[str, Event]:
    """The latest ``leased`` event of each of ``job_ids`` found among the last
    ``scan`` entries (when its current lease began)."""
    wanted = set(job_ids)
    found: dict[str, Event] = {}
    if not wanted:
        return found
    for event in _recent(backend, queue, scan):
        if event.event == "leased" and event.job in wanted:
            found[event.job] = event
    return found
