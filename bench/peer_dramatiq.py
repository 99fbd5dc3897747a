"""The Dramatiq broker and actors for the Dramatiq runs
(``dramatiq bench.peer_dramatiq --processes 1 --threads 10``).

Dramatiq's defaults with its Redis broker (``RedisBroker``: a Lua dispatch
script per enqueue, fetch, ack; at-least-once delivery with acks per
worker; an idle consumer polls with a backoff of up to one second). The
``Results`` middleware (Redis backend) is added because Dramatiq keeps no
trace of a finished message otherwise; only :func:`stamp` stores its result
(``store_results=True``), as Huey stores only non-``None`` results. The
Redis URL comes from ``$BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

broker = RedisBroker(url=URL)
backend = RedisBackend(url=URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default")
def noop() -> None:
    """Do nothing (throughput scenarios); no result stored."""


@dramatiq.actor(queue_name="default", store_results=True)
def stamp() -> float:
    """Return the wall-clock time at which the actor started, seconds since the
    epoch (stored by the Results middleware)."""
    return time.time()
