"""Reads of a queue's learned run times and limits (part of :class:`Backend`).

Nothing here writes: statistics are written by ``lua/complete.lua``
(``lua/lib/stats.lua``), limits by ``lua/queue_limit.lua``. A damaged
statistics row is skipped (and reported by name), never allowed to hide the
others.
"""

from __future__ import annotations

import logging

import redis

from scheduler.backend.keys import QueueKeys
from scheduler.backend.replies import text
from scheduler.learning import TaskStats, parse_stats_row
from scheduler.limits import QueueLimits, parse_limits

__all__ = ["LearnedReads"]

log = logging.getLogger("scheduler.backend")


class LearnedReads:
    """Task statistics and limit reads; mixed into :class:`scheduler.backend.Backend`."""

    client: redis.Redis

    def queue(self, name: str) -> QueueKeys:  # provided by Backend
        raise NotImplementedError

    def task_stats(self, queue: str) -> list[TaskStats]:
        """Run-time statistics of every task of ``queue`` that has had a
        measured successful run, by task name. A damaged row is logged and
        skipped.

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be read.
        """
        raw = self.client.hgetall(self.queue(queue).taskstats)
        out = []
        for key, value in sorted((text(k), text(v)) for k, v in raw.items()):
            stats = parse_stats_row(key, value)
            if stats is None:
                log.warning("damaged run-time statistics of task %r in queue %r", key, queue)
                continue
            out.append(stats)
        return out

    def queue_limits(self, queue: str) -> QueueLimits:
        """The concurrency and rate limits of ``queue`` and its tasks
        (settings only; malformed fields are ignored, as the lease script
        ignores them).

        Raises:
            InvalidNameError: a malformed queue name.
            redis.RedisError: Redis could not be read.
        """
        raw = self.client.hgetall(self.queue(queue).limits)
        return parse_limits({text(k): text(v) for k, v in raw.items()})
