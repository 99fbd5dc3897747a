"""Reading and tailing the per-queue job event streams.

Every state-changing script appends to its queue's ``P:{Q}:events`` stream
(``XADD ... MAXLEN ~ N``, so memory stays bounded) one entry per call and
event kind, with fields ``e`` (event name), ``j`` (job ids joined by ``,``)
and optionally ``d`` (details joined by ``,``, one per job: attempt number,
new priority, "manual", ...). Batching keeps the hot paths at one XADD per
call; :func:`expand_entry` turns an entry back into one :class:`Event` per
job. Event names: enqueued, leased, succeeded, retried, dead, cancelled,
expired (lease expired, requeued), promoted, released, reprioritized (plus
those of cron scripts).

Reading and following go through the storage layer
(:mod:`scheduler.backend.events`): following uses ``XREAD BLOCK`` on a
dedicated connection (:meth:`scheduler.backend.Backend.event_reader`), one
``XREAD`` for all followed queues.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from scheduler.backend import Backend
from scheduler.backend.replies import text
from scheduler.timeutil import ms_to_datetime

__all__ = ["Event", "expand_entry", "follow_events", "recent_events", "stream_position"]


@attrs.frozen
class Event:
    """One job event.

    Attributes:
        id: stream entry id ``"<ms>-<n>"`` (server time of the event).
        queue: queue name.
        event: event name (enqueued, leased, succeeded, ...).
        job: job id.
        detail: extra detail ("" if none).
    """

    id: str
    queue: str
    event: str
    job: str
    detail: str

    @property
    def time(self) -> datetime:
        """When it happened (server clock, aware UTC)."""
        return ms_to_datetime(_id_key(self.id)[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (documented keys, see docs/operating.md)."""
        return {
            "id": self.id,
            "time": self.time.isoformat(),
            "queue": self.queue,
            "event": self.event,
            "job": self.job,
            "detail": self.detail or None,
        }


_MAX_SEQ = 2**64 - 1


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def expand_entry(queue: str, entry_id: object, fields: Mapping[Any, Any]) -> list[Event]:
    """The events of one stream entry (one per job id it names), in order.

    Args:
        queue: the stream's queue.
        entry_id: the entry's stream id (``str`` or ``bytes``).
        fields: the entry's fields (``e``, ``j``, ``d``; ``str`` or ``bytes``).
    """
    f = {text(k): text(v) for k, v in fields.items()}
    jobs = f.get("j", "").split(",")
    details = f.get("d", "").split(",") if f.get("d") else [""] * len(jobs)
    if len(details) != len(jobs):  # malformed: keep the detail whole
        details = [f.get("d", "")] * len(jobs)
    eid = text(entry_id)
    return [
        Event(id=eid, queue=queue, event=f.get("e", ""), job=j, detail=d)
        for j, d in zip(jobs, details, strict=True)
    ]


def recent_events(
    backend: Backend, queues: Sequence[str] | None = None, count: int = 20
) -> list[Event]:
    """The last ``count`` events across ``queues`` (default: all), oldest first.

    Raises:
        InvalidNameError: a malformed queue name.
    """
    if count <= 0:
        return []
    names = list(queues) if queues is not None else backend.queue_names()
    events = [
        event
        for q, entries in zip(names, backend.recent_event_entries(names, count), strict=True)
        for entry in entries
        for event in expand_entry(q, entry.id, entry.fields)
    ]
    # Across queues the order is by server time to the millisecond (each
    # stream numbers its own entries within a millisecond).
    events.sort(key=lambda e: _id_key(e.id))
    return events[-count:]


def stream_position(backend: Backend) -> str:
    """A stream id standing for "now" on the server's clock: every event
    appended from now on has a greater id (so do events of the current
    millisecond: stream ids are only as fine as the ms clock)."""
    return f"{backend.server_time_ms() - 1}-{_MAX_SEQ}"


def follow_events(
    backend: Backend,
    queues: Sequence[str] | None = None,
    *,
    after: dict[str, str] | None = None,
    since: str | None = None,
    block: float = 5.0,
    stop: threading.Event | None = None,
) -> Iterator[Event]:
    """Yield events as they are appended, until ``stop`` is set (or forever).

    Args:
        backend: the storage layer.
        queues: queues to follow; None follows every registered queue,
            including queues registered while following (re-read after each
            block).
        after: per queue, the stream id after which to start (e.g. the last
            event shown).
        since: where the other queues start: a stream id (events after it)
            as returned by :func:`stream_position`; default: now. Queues
            registered while following start at their first event (they
            were registered after ``since``, so none is missed).
        block: longest single ``XREAD BLOCK``, seconds; ``stop`` is checked
            at least this often.
        stop: set it to end the iteration.

    Raises:
        InvalidNameError: a malformed queue name.
        redis.RedisError: a read failed.
    """
    idle = stop if stop is not None else threading.Event()
    with backend.event_reader(block) as reader:
        start = since if since is not None else stream_position(backend)
        cursors = {q: (after or {}).get(q, start) for q in (queues or backend.queue_names())}
        while stop is None or not stop.is_set():
            if queues is None:
                for q in backend.queue_names():
                    cursors.setdefault(q, "0-0")
            if not cursors:  # nothing to follow yet: wait for a queue to appear
                if idle.wait(block):
                    return
                continue
            batch: list[Event] = []
            for q, entries in reader.read_events(
                cursors, block_ms=max(1, int(block * 1000)), count=500
            ):
                for entry in entries:
                    cursors[q] = entry.id
                    batch.extend(expand_entry(q, entry.id, entry.fields))
            batch.sort(key=lambda e: _id_key(e.id))
            yield from batch
