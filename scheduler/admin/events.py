"""Reading and tailing the per-queue job event streams.

Every state-changing script appends to its queue's ``P:{Q}:events`` stream
(``XADD ... MAXLEN ~ N``, so memory stays bounded) one entry per call and
event kind, with fields ``e`` (event name), ``j`` (job ids joined by ``,``)
and optionally ``d`` (details joined by ``,``, one per job: attempt number,
new priority, "manual", ...). Batching keeps the hot paths at one XADD per
call; :func:`expand_entry` turns an entry back into one :class:`Event` per
job. Event names: enqueued, leased, succeeded, retried (a failed attempt
will be retried), rerun (an operator ran a finished job again), dead,
cancelled, expired (lease expired, requeued), promoted, released,
reprioritized (plus those of cron scripts).

**Audit events.** Every operator action that changes something (retry,
cancel, reprioritize, run-now, pause, resume, aging, purge, schedule
create/update/pause/resume/remove) also appends one entry ``e=audit`` with
``x`` = the action (:data:`AUDIT_ACTIONS`), ``a`` = the actor, ``n`` = jobs
touched, ``j`` = its targets (job ids or a schedule id) and ``d`` = a
detail. The script making the change writes it, so it is atomic with the
change and trimmed with the stream. It is read as one :class:`Event`
(``event == "audit"``), not one per job.

Reading and following go through the storage layer
(:mod:`scheduler.backend.events`): following uses ``XREAD BLOCK`` on a
dedicated connection (:meth:`scheduler.backend.Backend.event_reader`), one
``XREAD`` for all followed queues.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from scheduler.backend import Backend
from scheduler.backend.replies import text
from scheduler.timeutil import ms_to_datetime

__all__ = [
    "AUDIT",
    "AUDIT_ACTIONS",
    "Event",
    "audit_matches",
    "expand_entry",
    "follow_events",
    "recent_events",
    "stream_position",
]

#: Event name of audit entries.
AUDIT = "audit"

#: The ``action`` of audit events, as the scripts write them.
AUDIT_ACTIONS: tuple[str, ...] = (
    "retry",
    "cancel",
    "reprioritize",
    "run_now",
    "pause",
    "resume",
    "aging",
    "limit",
    "purge",
    "schedule_create",
    "schedule_update",
    "schedule_pause",
    "schedule_resume",
    "schedule_remove",
)


@attrs.frozen
class Event:
    """One job event.

    Attributes:
        id: stream entry id ``"<ms>-<n>"`` (server time of the event).
        queue: queue name.
        event: event name (enqueued, leased, succeeded, ...).
        job: job id; for an audit event its targets (job ids joined by
            ``,``, a schedule id, or "").
        detail: extra detail ("" if none).
        action: an audit event's action (:data:`AUDIT_ACTIONS`), else "".
        actor: who ran an audit event's action, else "".
        count: jobs an audit event's action touched (0 otherwise).
    """

    id: str
    queue: str
    event: str
    job: str
    detail: str
    action: str = ""
    actor: str = ""
    count: int = 0

    @property
    def time(self) -> datetime:
        """When it happened (server clock, aware UTC)."""
        return ms_to_datetime(_id_key(self.id)[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (documented keys, see docs/operating.md); audit
        events add ``action``, ``actor`` and ``count``."""
        data: dict[str, Any] = {
            "id": self.id,
            "time": self.time.isoformat(),
            "queue": self.queue,
            "event": self.event,
            "job": self.job,
            "detail": self.detail or None,
        }
        if self.event == AUDIT:
            data.update(action=self.action, actor=self.actor, count=self.count)
        return data


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
    eid = text(entry_id)
    if f.get("e") == AUDIT:
        try:
            count = int(f.get("n", "0"))
        except ValueError:
            count = 0
        return [
            Event(
                id=eid,
                queue=queue,
                event=AUDIT,
                job=f.get("j", ""),
                detail=f.get("d", ""),
                action=f.get("x", ""),
                actor=f.get("a", ""),
                count=count,
            )
        ]
    jobs = f.get("j", "").split(",")
    details = f.get("d", "").split(",") if f.get("d") else [""] * len(jobs)
    if len(details) != len(jobs):  # malformed: keep the detail whole
        details = [f.get("d", "")] * len(jobs)
    return [
        Event(id=eid, queue=queue, event=f.get("e", ""), job=j, detail=d)
        for j, d in zip(jobs, details, strict=True)
    ]


def audit_matches(event: Event, actions: Collection[str] | None) -> bool:
    """True if ``actions`` is None (no filter), or ``event`` is an audit event
    whose action is one of ``actions``."""
    return actions is None or (event.event == AUDIT and event.action in actions)


def recent_events(
    backend: Backend,
    queues: Sequence[str] | None = None,
    count: int = 20,
    *,
    actions: Collection[str] | None = None,
) -> list[Event]:
    """The last ``count`` events across ``queues`` (default: all), oldest first.

    Args:
        actions: only audit events of these actions (see
            :data:`AUDIT_ACTIONS`); the whole retained stream of each queue
            is searched (at most about ``events_maxlen`` entries each).

    Raises:
        InvalidNameError: a malformed queue name.
    """
    if count <= 0:
        return []
    names = list(queues) if queues is not None else backend.queue_names()
    window = count if actions is None else max(count, backend.events_maxlen)
    events = [
        event
        for q, entries in zip(names, backend.recent_event_entries(names, window), strict=True)
        for entry in entries
        for event in expand_entry(q, entry.id, entry.fields)
        if audit_matches(event, actions)
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
