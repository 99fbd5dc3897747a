"""Reads of a queue's job sets, settings and counters (part of :class:`Backend`).

Nothing here writes: every change is a script (see
:mod:`scheduler.backend.scripts`). These are the plain reads the admin
queries (:mod:`scheduler.admin`) and the metrics collector
(:mod:`scheduler.metrics`) are built on: sizes of the job sets, pages of a
set in score order, the queue's ``paused``/``aging`` settings and its
``stats`` counters. Values come back decoded (``str``, ``int``, ``float``);
job records are read with :meth:`Backend.raw_records` and decoded by the
caller one at a time, so one damaged record never hides the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import redis

from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text
from scheduler.errors import ValidationError
from scheduler.priority import member_job_id

__all__ = ["JOB_SETS", "MEMBER_SETS", "QueueReads", "QueueSnapshot"]

#: The sorted sets holding a queue's jobs, one per state group (see
#: :mod:`scheduler.backend.keys`): ``ready``, ``delayed`` (ETA and retry
#: ETA), ``leased``, ``dead``, ``done`` (succeeded and cancelled).
JOB_SETS: tuple[str, ...] = ("ready", "delayed", "leased", "dead", "done")

#: Sets whose members are ``<seq>:<job id>`` rather than the bare job id.
MEMBER_SETS = frozenset({"ready", "delayed"})


@attrs.frozen
class QueueSnapshot:
    """Sizes, settings and counters of one queue, read together.

    Attributes:
        queue: queue name.
        sizes: jobs in each of :data:`JOB_SETS` (0 for a missing set).
        paused: workers do not lease from the queue.
        aging: the queue's aging, priority units per second of waiting
            (0.0 when unset or unreadable).
        stats: fields of the queue's ``stats`` hash as text: the cumulative
            counters (``enqueued``, ``succeeded``, ...) and the per-second
            buckets ``r:<second>``; only the fields asked for (those that
            exist) when :meth:`QueueReads.queue_snapshots` got ``stats``.
    """

    queue: str
    sizes: dict[str, int]
    paused: bool
    aging: float
    stats: dict[str, str]


def _check_set(set_name: str) -> None:
    if set_name not in JOB_SETS:
        raise ValidationError(f"unknown job set {set_name!r}; use one of {', '.join(JOB_SETS)}")


def _aging(raw: object) -> float:
    if raw is None or raw in (b"", ""):
        return 0.0
    try:
        return float(text(raw))
    except ValueError:
        return 0.0


class QueueReads:
    """Queue set, setting and counter reads; mixed into :class:`scheduler.backend.Backend`."""

    client: redis.Redis

    def queue(self, name: str) -> QueueKeys:  # provided by Backend
        raise NotImplementedError

    def queue_snapshots(
        self, queues: Sequence[str], *, stats: Sequence[str] | None = None
    ) -> list[QueueSnapshot]:
        """Sizes, settings and counters of ``queues``, in order, in one
        pipelined round trip (a few ``ZCARD`` and ``HMGET`` per queue).

        Args:
            queues: queue names; unknown queues read as zeros.
            stats: the ``stats`` fields to read (``HMGET``); None reads the
                whole hash (``HGETALL``, which includes the per-second
                buckets -- at most a few minutes' worth).

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be read.
        """
        keys = [self.queue(q) for q in queues]
        wanted = None if stats is None else list(stats)
        pipe = self.client.pipeline(transaction=False)
        for qk in keys:
            for name in JOB_SETS:
                pipe.zcard(qk.key(name))
            pipe.hmget(qk.meta, ["paused", "aging"])
            if wanted is None:
                pipe.hgetall(qk.stats)
            elif wanted:
                pipe.hmget(qk.stats, wanted)
        replies = pipe.execute()
        step = len(JOB_SETS) + (1 if wanted == [] else 2)
        result = []
        for i, qk in enumerate(keys):
            part = replies[i * step : (i + 1) * step]
            sizes = {name: int(n) for name, n in zip(JOB_SETS, part, strict=False)}
            paused, aging = part[len(JOB_SETS)]
            counters: dict[str, str]
            if wanted is None:
                counters = {text(k): text(v) for k, v in part[-1].items()}
            elif wanted:
                counters = {
                    name: text(v) for name, v in zip(wanted, part[-1], strict=True) if v is not None
                }
            else:
                counters = {}
            result.append(
                QueueSnapshot(
                    queue=qk.queue,
                    sizes=sizes,
                    paused=paused is not None and text(paused) == "1",
                    aging=_aging(aging),
                    stats=counters,
                )
            )
        return result

    def pending_now(self, queue: str, now_ms: int) -> int:
        """Jobs of ``queue`` a worker could still run now, read atomically
        (one MULTI): leased ones and, unless the queue is paused, ready ones
        and delayed ones due by ``now_ms`` (server clock, ms). Used by burst mode
        (:mod:`scheduler.worker.burst`).

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be read.
        """
        qk = self.queue(queue)
        pipe = self.client.pipeline(transaction=True)
        pipe.zcard(qk.ready)
        pipe.zcount(qk.delayed, "-inf", now_ms)
        pipe.zcard(qk.leased)
        pipe.hget(qk.meta, "paused")
        ready, due, leased, paused = pipe.execute()
        if paused is not None and text(paused) == "1":
            return int(leased)
        return int(leased) + int(due) + int(ready)

    def job_set_size(self, queue: str, set_name: str) -> int:
        """Jobs in one of ``queue``'s :data:`JOB_SETS`.

        Raises:
            ValidationError: ``set_name`` is not one of :data:`JOB_SETS`.
            InvalidNameError: a malformed queue name.
        """
        _check_set(set_name)
        return int(self.client.zcard(self.queue(queue).key(set_name)))

    def job_set_range(
        self, queue: str, set_name: str, start: int, stop: int, *, reverse: bool = False
    ) -> list[tuple[str, float]]:
        """``(job id, score)`` of one of ``queue``'s :data:`JOB_SETS` by rank,
        ``start`` to ``stop`` inclusive (negative ranks count from the end,
        like ``ZRANGE``), in score order (descending with ``reverse``).

        Scores: ready score (ready), ETA ms (delayed), lease deadline ms
        (leased), record expiry ms (dead, done). Members of the ready and
        delayed sets (``<seq>:<id>``) are returned as job ids.

        Raises:
            ValidationError: ``set_name`` is not one of :data:`JOB_SETS`.
            InvalidNameError: a malformed queue name.
        """
        _check_set(set_name)
        page: Any = self.client.zrange(
            self.queue(queue).key(set_name), start, stop, desc=reverse, withscores=True
        )
        strip = set_name in MEMBER_SETS
        out = []
        for member, score in page:
            name = text(member)
            out.append((member_job_id(name) if strip else name, float(score)))
        return out

    def job_set_after(
        self,
        queue: str,
        set_name: str,
        after: tuple[float, str] | None,
        count: int,
        *,
        reverse: bool = False,
    ) -> list[tuple[str, float, str]]:
        """Up to ``count`` members of one of ``queue``'s :data:`JOB_SETS` that
        come after the position ``after`` in score order (keyset paging).

        The position is a ``(score, member)`` pair as returned earlier (the
        member need not exist any more): members with a greater score, or
        an equal score and a greater member (Redis orders equal scores by
        member bytes), come after it; with ``reverse`` the order is
        descending and "after" means smaller. So a page boundary stays put
        while jobs move: a job is neither shown twice nor skipped because
        jobs before it left. Members sharing the boundary score are read in
        further chunks of ``count`` (bounded by how many share it).

        Args:
            queue: queue name.
            set_name: one of :data:`JOB_SETS`.
            after: the last position already seen, or None to start at
                the beginning.
            count: most members returned (>= 1).
            reverse: descending score order (newest first for ``dead``
                and ``done``).

        Returns:
            ``(job id, score, member)`` triples in order; ``member`` is the
            raw set member (``<seq>:<id>`` in ``ready``/``delayed``), the
            position to pass as ``after`` for the next page.

        Raises:
            ValidationError: ``set_name`` is not one of :data:`JOB_SETS`, or
                ``count`` < 1.
            InvalidNameError: a malformed queue name.
        """
        _check_set(set_name)
        if count < 1:
            raise ValidationError("count must be >= 1")
        key = self.queue(queue).key(set_name)
        strip = set_name in MEMBER_SETS
        out: list[tuple[str, float, str]] = []
        skip = 0
        while len(out) < count:
            want = count - len(out)
            page: Any
            if after is None:
                page = self.client.zrange(key, skip, skip + want - 1, desc=reverse, withscores=True)
            elif reverse:
                page = self.client.zrevrangebyscore(
                    key, after[0], "-inf", start=skip, num=want, withscores=True
                )
            else:
                page = self.client.zrangebyscore(
                    key, after[0], "+inf", start=skip, num=want, withscores=True
                )
            if not page:
                return out
            skip += len(page)
            for raw_member, raw_score in page:
                member, score = text(raw_member), float(raw_score)
                # At the boundary score keep only the members past the boundary.
                if (
                    after is not None
                    and score == after[0]
                    and ((member >= after[1]) if reverse else (member <= after[1]))
                ):
                    continue
                out.append((member_job_id(member) if strip else member, score, member))
            if len(page) < want:
                return out
        return out
