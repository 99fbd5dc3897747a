"""Reads of the stored cron and interval schedules (part of :class:`Backend`).

Writes go through the schedule scripts (:mod:`scheduler.backend.cron_scripts`);
this mixin holds every plain read of the ``schedules`` hash and ``cron`` set.
Record texts are returned undecoded: decoding (and reporting a damaged
record) is the caller's, one record at a time, so one bad record never hides
the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import redis

from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text

__all__ = ["DueSchedule", "ScheduleReads"]


@attrs.frozen
class DueSchedule:
    """A due schedule as read by a cron process.

    Attributes:
        schedule_id: the hash field (the schedule's id in this queue).
        score: its next fire time in the cron set, ms.
        record: the stored record text, or None if there is none.
        raw: the stored record exactly as read (``""`` if none), passed to
            ``cron_fire`` so it applies only to the record read.
    """

    schedule_id: str
    score: int
    record: str | None
    raw: bytes | str


class ScheduleReads:
    """Schedule reads; mixed into :class:`scheduler.backend.Backend`."""

    client: redis.Redis

    def queue(self, name: str) -> QueueKeys:  # provided by Backend
        raise NotImplementedError

    def queue_names(self) -> list[str]:  # provided by Backend
        raise NotImplementedError

    def schedule_queue(self, schedule_id: str) -> str | None:
        """The first registered queue (sorted) holding ``schedule_id``, or None."""
        for name in self.queue_names():
            if self.client.hexists(self.queue(name).schedules, schedule_id):
                return name
        return None

    def read_schedule(self, queue: str, schedule_id: str) -> tuple[str | None, int | None]:
        """The stored record text of one schedule (None if absent) and its
        next fire time, ms (None unless active)."""
        qk = self.queue(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(qk.schedules, schedule_id)
        pipe.zscore(qk.cron, schedule_id)
        raw, score = pipe.execute()
        return (
            None if raw is None else text(raw),
            None if score is None else int(score),
        )

    def read_schedules(self, queue: str) -> list[tuple[str, str, int | None]]:
        """Every schedule of ``queue``: ``(id, record text, next fire ms or
        None)``, sorted by id."""
        qk = self.queue(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(qk.schedules)
        pipe.zrange(qk.cron, 0, -1, withscores=True)
        raw, scored = pipe.execute()
        scores = {text(member): int(score) for member, score in scored}
        rows = [(text(k), text(v)) for k, v in raw.items()]
        return [(sid, record, scores.get(sid)) for sid, record in sorted(rows)]

    def cron_heads(self, queues: Sequence[str]) -> list[int | None]:
        """Per queue, the earliest next fire time of its schedules (ms), or None."""
        if not queues:
            return []
        pipe = self.client.pipeline(transaction=False)
        for q in queues:
            pipe.zrange(self.queue(q).cron, 0, 0, withscores=True)
        return [int(head[0][1]) if head else None for head in pipe.execute()]

    def cron_next_after(self, queues: Sequence[str], now_ms: int) -> list[int | None]:
        """Per queue, the earliest next fire time strictly after ``now_ms``
        (ms), or None: what a cron process sleeps until (due ones it could
        not fire do not count)."""
        if not queues:
            return []
        pipe = self.client.pipeline(transaction=False)
        for q in queues:
            pipe.zrangebyscore(
                self.queue(q).cron, f"({now_ms}", "+inf", start=0, num=1, withscores=True
            )
        return [int(head[0][1]) if head else None for head in pipe.execute()]

    def due_ids(self, queue: str, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` schedules of ``queue`` due at ``now_ms`` (ms),
        earliest first: ``(id, next fire ms)``, without their records."""
        due: list[Any] = list(
            self.client.zrangebyscore(
                self.queue(queue).cron, "-inf", now_ms, start=0, num=limit, withscores=True
            )
        )
        return [(text(member), int(score)) for member, score in due]

    def due_records(
        self, queue: str, due: Sequence[tuple[str, int]], *, current: bool = True
    ) -> list[DueSchedule]:
        """The records of ``due`` schedules (from :meth:`due_ids`), in order,
        leaving out those whose cron score is no longer the one read (another
        cron process fired them, or they changed): one pipelined round trip
        (HMGET and a ZSCORE each). Without ``current``: one HMGET, the
        scores not checked again (``cron_fire`` checks them anyway)."""
        if not due:
            return []
        qk = self.queue(queue)
        ids = [sid for sid, _ in due]
        if not current:
            raws = self.client.hmget(qk.schedules, ids)
            return [
                DueSchedule(sid, score, None if raw is None else text(raw), raw or "")
                for (sid, score), raw in zip(due, raws, strict=True)
            ]
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(qk.schedules, ids)
        for sid in ids:  # ZSCOREs, not ZMSCORE: the documented ACL allows zscore
            pipe.zscore(qk.cron, sid)
        raws, *scores = pipe.execute()
        return [
            DueSchedule(sid, score, None if raw is None else text(raw), raw or "")
            for (sid, score), raw, current in zip(due, raws, scores, strict=True)
            if current is not None and int(current) == score
        ]

    def due_schedules(self, queue: str, now_ms: int, limit: int) -> list[DueSchedule]:
        """Up to ``limit`` schedules of ``queue`` due at ``now_ms`` (ms), earliest first."""
        qk = self.queue(queue)
        due: list[Any] = list(
            self.client.zrangebyscore(qk.cron, "-inf", now_ms, start=0, num=limit, withscores=True)
        )
        if not due:
            return []
        ids = [text(member) for member, _ in due]
        raws = self.client.hmget(qk.schedules, ids)
        return [
            DueSchedule(sid, int(score), None if raw is None else text(raw), raw or "")
            for sid, (_, score), raw in zip(ids, due, raws, strict=True)
        ]

    def raw_schedule(self, queue: str, schedule_id: str) -> str | None:
        """The stored record text of one schedule, or None."""
        raw = self.client.hget(self.queue(queue).schedules, schedule_id)
        return None if raw is None else text(raw)
