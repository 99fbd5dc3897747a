"""Reads of the per-queue job event streams (part of :class:`Backend`).

Every state-changing script appends to its queue's ``P:{Q}:events`` stream
(``XADD ... MAXLEN ~ N``) one entry per call and event kind, with fields
``e`` (event name), ``j`` (job ids joined by ``,``) and optionally ``d``
(details joined by ``,``). This module reads the entries back, decoded but
not expanded: :func:`scheduler.admin.events.expand_entry` turns an entry
into one event per job.

Following (``XREAD BLOCK``) needs a dedicated connection whose socket
timeout exceeds the block time (redis-py's default socket timeout would
break a longer block): :meth:`EventReads.event_reader` opens one, and an
:class:`EventReader` reads through it until closed. One ``XREAD`` covers
every followed queue, which on Redis Cluster requires them to live on one
node (always true on a single server).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import redis

from scheduler.backend.connection import blocking_client
from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text

__all__ = ["EventReader", "EventReads", "StreamEntry"]


@attrs.frozen
class StreamEntry:
    """One event stream entry.

    Attributes:
        id: stream entry id ``"<ms>-<n>"`` (server time of the append, ms).
        fields: the entry's fields, decoded (``e``, ``j``, ``d``).
    """

    id: str
    fields: dict[str, str]


def _entry(entry_id: object, fields: Mapping[Any, Any]) -> StreamEntry:
    return StreamEntry(text(entry_id), {text(k): text(v) for k, v in fields.items()})


class EventReader:
    """Blocking reads of event streams on one dedicated connection.

    Made by :meth:`EventReads.event_reader`; close it (or use it as a context
    manager) when done.
    """

    def __init__(self, backend: EventReads, client: redis.Redis) -> None:
        self._backend = backend
        self._client = client

    def read_events(
        self, cursors: Mapping[str, str], *, block_ms: int, count: int
    ) -> list[tuple[str, list[StreamEntry]]]:
        """Entries appended after each queue's cursor, waiting up to
        ``block_ms`` for the first one (``XREAD BLOCK``).

        Args:
            cursors: queue name -> stream id after which to read (``"0-0"``:
                from the first entry kept).
            block_ms: longest wait, ms (>= 1; at most the reader's
                ``block_seconds``).
            count: most entries per queue.

        Returns:
            ``(queue, entries oldest first)`` for each queue with new entries;
            empty if none arrived in time.

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: the read failed.
        """
        if not cursors:
            return []
        by_key = {self._backend.queue(q).events: q for q in cursors}
        streams: Any = {self._backend.queue(q).events: cid for q, cid in cursors.items()}
        reply: Any = self._client.xread(streams, count=count, block=block_ms)
        pairs = reply.items() if isinstance(reply, dict) else (reply or [])  # RESP3 / RESP2
        return [
            (by_key[text(key)], [_entry(eid, fields) for eid, fields in entries])
            for key, entries in pairs
        ]

    def close(self) -> None:
        """Close the dedicated connection."""
        self._client.close()

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventReads:
    """Event stream reads; mixed into :class:`scheduler.backend.Backend`."""

    client: redis.Redis

    def queue(self, name: str) -> QueueKeys:  # provided by Backend
        raise NotImplementedError

    def recent_event_entries(self, queues: Sequence[str], count: int) -> list[list[StreamEntry]]:
        """Per queue (in order), its last ``count`` stream entries, newest
        first (``XREVRANGE``), in one pipelined round trip.

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be read.
        """
        if not queues:
            return []
        pipe = self.client.pipeline(transaction=False)
        for q in queues:
            pipe.xrevrange(self.queue(q).events, count=count)
        return [
            [_entry(entry_id, fields) for entry_id, fields in entries] for entries in pipe.execute()
        ]

    def event_reader(self, block_seconds: float) -> EventReader:
        """An :class:`EventReader` on a new connection for blocking reads of
        up to ``block_seconds`` (see
        :func:`scheduler.backend.connection.blocking_client`)."""
        return EventReader(self, blocking_client(self.client, block_seconds))
