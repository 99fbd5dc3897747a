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
:class:`EventReader` reads through it until closed. On one server one
``XREAD`` covers every followed queue. On Redis Cluster an ``XREAD`` may
only name keys of one slot (``CROSSSLOT`` otherwise, even on one master), so
the reader makes one blocking ``XREAD`` per slot, each in a thread of its
own, and returns what the first ones to answer found; a read still blocked
is kept and its entries are returned by a later call (none is lost, none is
returned twice).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import redis

from scheduler.backend import topology
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
        self._cluster = topology.is_cluster(client)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        # slot -> the XREAD in flight for it (cluster only)
        self._pending: dict[int, concurrent.futures.Future[Any]] = {}

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
        streams: dict[str, str] = {self._backend.queue(q).events: c for q, c in cursors.items()}
        if self._cluster:
            replies = self._read_per_slot(streams, block_ms, count)
        else:
            replies = [self._client.xread(streams, count=count, block=block_ms)]  # type: ignore[arg-type]
        found = []
        for reply in replies:
            pairs = reply.items() if isinstance(reply, dict) else (reply or [])  # RESP3 / RESP2
            for key, entries in pairs:
                found.append((by_key[text(key)], [_entry(eid, fields) for eid, fields in entries]))
        return found

    def _read_per_slot(self, streams: dict[str, str], block_ms: int, count: int) -> list[Any]:
        cluster: Any = self._client
        by_slot: dict[int, dict[str, str]] = {}
        for key, cursor in streams.items():
            by_slot.setdefault(cluster.keyslot(key), {})[key] = cursor
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="scheduler-xread")
        for slot, group in by_slot.items():
            if slot not in self._pending:  # a read still in flight keeps its cursors
                self._pending[slot] = self._pool.submit(
                    cluster.xread, group, count=count, block=block_ms
                )
        concurrent.futures.wait(
            list(self._pending.values()),
            timeout=block_ms / 1000 + 1.0,
            return_when=concurrent.futures.FIRST_COMPLETED,
        )
        replies = []
        for slot, future in list(self._pending.items()):
            if future.done():
                del self._pending[slot]
                replies.append(future.result())  # raises the read's error
        return replies

    def close(self) -> None:
        """Close the dedicated connection (and, on a cluster, the per-slot
        reads: their connections are closed, which ends them)."""
        self._client.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

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
