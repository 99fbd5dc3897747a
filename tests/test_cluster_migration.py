"""A queue's slot migrates to another master while a worker drains it
(``CLUSTER SETSLOT ... IMPORTING/MIGRATING`` + ``MIGRATE``, as
``redis-cli --cluster reshard`` does): no job is lost, none runs twice."""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any

import redis

from scheduler import Scheduler
from scheduler.backend.keys import EXTENDED_KEY_NAMES, LEASE_KEY_NAMES, STANDARD_KEY_NAMES
from tests.helpers import running, wait_until
from tests.servers import ClusterSet

#: Every key a queue can have: the standard and extended keys, the lease
#: reply cache and its index, the cron schedules and their index.
MAX_QUEUE_KEYS = len(STANDARD_KEY_NAMES) + len(EXTENDED_KEY_NAMES) + len(LEASE_KEY_NAMES) + 2


def _cmd(port: int, *args: Any) -> Any:
    with contextlib.closing(redis.Redis(port=port, socket_timeout=10)) as c:
        return c.execute_command(*args)


def migrate_slot(cluster: ClusterSet, slot: int, source: int, target: int) -> int:
    """Move ``slot`` from the master on port ``source`` to the one on
    ``target`` key batch by key batch; returns how many keys moved."""
    source_id, target_id = cluster.node_id(source), cluster.node_id(target)
    _cmd(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    _cmd(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    moved = 0
    while True:
        keys = _cmd(source, "CLUSTER", "GETKEYSINSLOT", slot, 5)
        if not keys:
            break
        _cmd(source, "MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        moved += len(keys)
    for port in (target, source, *[p for p in cluster.ports if p not in (source, target)]):
        _cmd(port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
    return moved


def test_slot_migration_during_drain_loses_none_and_runs_none_twice(
    redis_cluster: ClusterSet,
) -> None:
    app = Scheduler.from_url(redis_cluster.url, prefix="mig")
    queue = "migrating"
    runs: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    started = threading.Event()

    @app.task(queue=queue)
    def work(i: int) -> int:
        with lock:
            runs[i] += 1
            if sum(runs.values()) >= 50:
                started.set()
        return i

    try:
        n = 400
        jobs = [work.enqueue(i) for i in range(n)]
        client: Any = app.redis
        slot = client.keyslot(app.queue_keys(queue).jobs)
        source = redis_cluster.owner(slot)
        target = next(p for p in redis_cluster.ports if p != source)
        with running(app, queues=[queue, "other"], concurrency=4, max_block=1.0):
            assert started.wait(30)
            moved = migrate_slot(redis_cluster, slot, source, target)
            # The queue's own keys and nothing per request (before: one
            # reply-cache key per lease request of the last 60 s, ~500).
            assert 0 < moved <= MAX_QUEUE_KEYS
            wait_until(lambda: len(runs) == n, timeout=60, interval=0.05)
            results = [j.result(timeout=30) for j in jobs]
        assert results == list(range(n))
        assert sum(runs.values()) == n, [i for i, c in runs.items() if c > 1][:10]
        assert client.get_node_from_key(app.queue_keys(queue).jobs).port == target
        # After the drain (400 lease requests) the slot holds a constant key set.
        keys_after = _cmd(target, "CLUSTER", "COUNTKEYSINSLOT", slot)
        assert 0 < keys_after <= MAX_QUEUE_KEYS, keys_after
    finally:
        app.close()
