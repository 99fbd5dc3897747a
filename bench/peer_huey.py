"""The Huey instance and tasks for the Huey runs
(``huey_consumer bench.peer_huey.huey -w 10 -k thread``).

Huey's defaults: ``RedisHuey`` (blocking BRPOP dequeue, pickle serializer,
results stored in one hash; ``None`` results are not stored). The Redis URL
comes from ``$BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
import time

from huey import RedisHuey

huey = RedisHuey("bench", url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


@huey.task()
def noop() -> None:
    """Do nothing. Huey stores no result for ``None``, so nothing in Redis shows
    that it ran; the drain uses :func:`stamp` instead."""


@huey.task()
def stamp() -> float:
    """Return the wall-clock time at which the task started, seconds since the epoch
    (stored by Huey in its result hash)."""
    return time.time()
