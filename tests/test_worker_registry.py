"""The worker registry stays bounded without anyone listing workers, and
the metrics server is private by default (issue 11, item 11)."""

from __future__ import annotations

import socket

import pytest

from scheduler import Scheduler, Worker, defaults
from scheduler.backend.workers import PRUNE_BATCH
from scheduler.cli.worker import worker_command
from tests.helpers import running, scrape, wait_until

NOW = 1_700_000_000.0


def _members(app: Scheduler) -> set[str]:
    return {m.decode() for m in app.redis.zrange(app.keys.workers, 0, -1)}


def test_a_publish_drops_crashed_workers_from_the_registry(real_app: Scheduler) -> None:
    backend = real_app.backend
    # A crashed worker: its details hash has expired, its registry entry is old.
    real_app.redis.zadd(real_app.keys.workers, {"dead:1:aa": (NOW - 3600) * 1000})
    # A live worker whose clock lags: old score, but its hash is still there.
    backend.publish_worker("slow:2:bb", {"host": "slow"}, NOW - 600)
    # A worker that published recently (within the TTL): never a candidate.
    real_app.redis.zadd(real_app.keys.workers, {"fresh:3:cc": (NOW - 1) * 1000})
    backend.publish_worker("live:4:dd", {"host": "live"}, NOW)
    assert _members(real_app) == {"slow:2:bb", "fresh:3:cc", "live:4:dd"}


def test_pruning_is_bounded_per_publish(real_app: Scheduler) -> None:
    dead = {f"dead:{i}:aa": (NOW - 3600) * 1000 + i for i in range(PRUNE_BATCH + 10)}
    real_app.redis.zadd(real_app.keys.workers, dead)
    real_app.backend.publish_worker("live:1:aa", {"host": "h"}, NOW)
    assert len(_members(real_app)) == 10 + 1  # the oldest PRUNE_BATCH went
    real_app.backend.publish_worker("live:1:aa", {"host": "h"}, NOW + 5)
    assert _members(real_app) == {"live:1:aa"}


def test_a_worker_prunes_a_crashed_peer_while_running(real_app: Scheduler) -> None:
    """End to end: a running worker's own heartbeat clears a crashed peer."""
    real_app.redis.zadd(real_app.keys.workers, {"crashed:9:zz": 1000.0})
    with running(real_app):
        wait_until(lambda: "crashed:9:zz" not in _members(real_app), timeout=10)
        assert len(_members(real_app)) == 1


def test_metrics_server_binds_loopback_by_default(real_app: Scheduler) -> None:
    pytest.importorskip("prometheus_client")
    from scheduler.metrics import start_metrics_server

    assert defaults.METRICS_ADDR == "127.0.0.1"
    addr_option = next(p for p in worker_command.params if p.name == "metrics_addr")
    assert addr_option.default == defaults.METRICS_ADDR
    server = start_metrics_server(Worker(real_app, ["default"]), 0, interval=60)
    try:
        assert server.address == "127.0.0.1"
        assert "scheduler_jobs_in_flight" in scrape(f"http://127.0.0.1:{server.port}/metrics")
        with socket.socket() as probe:  # nothing listens on the other addresses
            assert probe.connect_ex(("127.0.0.2", server.port)) != 0
    finally:
        server.close()
