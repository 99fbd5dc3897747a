"""Cluster and Sentinel URLs: parsing, and one-line errors for bad input
(a cluster with no reachable node or without full slot coverage, a Sentinel
service that does not exist) through the admin CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from redis.cluster import RedisCluster

from scheduler import Scheduler
from scheduler.backend import topology
from scheduler.backend.connection import check_url, client_from_url
from scheduler.errors import ValidationError
from tests.helpers import ROOT, Output
from tests.servers import ClusterSet, SentinelSet
from tests.test_cli_common import invoke


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://h1:7000,h2:7001",
        "rediss+cluster://user:pw@h1:7000?ssl_ca_certs=/ca.pem",
        "redis+sentinel://s1:26379,s2/mymaster",
        "redis+sentinel://:pw@s1:26379/mymaster/2?sentinel_password=x",
    ],
)
def test_well_formed_urls_pass_the_check(url: str) -> None:
    assert topology.check_special_url(url)
    check_url(url)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://", "no host"),
        ("redis+cluster://h1:notaport", "bad host:port"),
        ("redis+cluster://h1:7000/3", "only database 0"),
        ("redis+cluster://h1:7000?colour=red", "unknown URL option"),
        ("redis+sentinel://s1:26379", "/<service>"),
        ("redis+sentinel://s1:26379/mymaster/x", "bad database"),
    ],
)
def test_malformed_urls_are_validation_errors(url: str, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        check_url(url)


def test_plain_urls_are_not_special() -> None:
    assert not topology.check_special_url("redis://localhost:6379/0")


def test_cluster_url_gives_a_cluster_client(redis_cluster: ClusterSet) -> None:
    client = client_from_url(redis_cluster.url)
    try:
        assert isinstance(client, RedisCluster)
        assert len(client.get_primaries()) == 3  # type: ignore[attr-defined]
    finally:
        client.close()


@pytest.mark.parametrize("resp3", [False, True])
def test_sentinel_lookup_skips_a_sentinel_still_running_a_failover(resp3: bool) -> None:
    """The sentinel leading a failover reports the old master (flag
    ``failover_in_progress``) until every replica is reconfigured, while the
    old master is already a replica: its answer is skipped (the others name
    the promoted master)."""
    client: Any = client_from_url("redis+sentinel://127.0.0.1:1/mymaster")  # no connection yet
    manager = client.connection_pool.sentinel_manager

    def state(flags: str) -> dict[str, Any]:
        found = flags.split(",")
        return {
            "flags": set(found) if resp3 else flags,
            "is_master": "master" in found,
            "is_sdown": False,
            "is_odown": False,
            "num-other-sentinels": 2,
        }

    assert manager.check_master_state(state("master"), "mymaster")
    leading = state("master,failover_in_progress,force_failover")
    assert not manager.check_master_state(leading, "mymaster")
    client.close()


def _one_line_error(result: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_cli_cluster_with_no_reachable_node() -> None:
    result = cli("--url", "redis+cluster://127.0.0.1:1,127.0.0.1:2", "status")
    _one_line_error(result, 1, "cannot reach Redis")


def test_cli_malformed_cluster_url_is_a_usage_error() -> None:
    _one_line_error(cli("--url", "redis+cluster://", "status"), 2, "no host")


def test_cli_unknown_sentinel_service(redis_sentinel: SentinelSet) -> None:
    hosts = ",".join(f"127.0.0.1:{p}" for p in redis_sentinel.sentinel_ports)
    result = cli("--url", f"redis+sentinel://{hosts}/nosuch", "status")
    _one_line_error(result, 1, "no master for Sentinel service 'nosuch'")


def test_cli_cluster_without_full_slot_coverage() -> None:
    partial = ClusterSet().start(cover_all=False)
    try:
        result = cli("--url", partial.url, "status")
    finally:
        partial.stop()
    _one_line_error(result, 1, "slots")


def test_cli_status_on_a_cluster(redis_cluster: ClusterSet) -> None:
    result = cli("--url", redis_cluster.url, "--prefix", "clistatus", "status", "--json")
    assert result.returncode == 0, result.stderr


def test_worker_waits_for_a_cluster_that_is_down_at_start() -> None:
    """A cluster client connects when it is made, so an app made at import
    from a cluster URL failed to load while the cluster was down and the
    worker exited; now the import is retried until the cluster is up, as a
    worker on one server waits for it."""
    cluster = ClusterSet()  # ports chosen, nothing started yet
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "worker", "tests.apps.topoapp:app"],
        cwd=ROOT,
        env={**os.environ, "SCHEDULER_TEST_URL": cluster.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out = Output(proc)
    try:
        out.wait_for("Redis is not ready", timeout=30)
        assert proc.poll() is None, out.text
        cluster.start()
        out.wait_for("started", timeout=60)
        app = Scheduler.from_url(cluster.url, prefix="topo")
        try:

            @app.task(name="echo")
            def echo(x: str) -> str:
                return x

            assert echo.enqueue("up").result(timeout=30) == "up"
        finally:
            app.close()
        code, text = out.finish()
        assert code == 0, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        cluster.stop()


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_cli_admin_commands_on_cluster_and_sentinel_urls(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Every kind of admin command (write, read, list, job actions, queue
    actions, events, registries) on a queue of each master, not just status."""
    servers = request.getfixturevalue(f"redis_{kind}")
    queues = ["adm0", "adm1", "adm2"]

    def run(*args: str) -> str:  # in-process (click's runner): a process start costs seconds
        result = invoke(servers.url, *args, prefix=f"adm{kind}")
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    ids = []
    for q in queues:
        out = run("enqueue", "t:x", "--queue", q, "--delay", "1h", "--json")
        ids.append((q, json.loads(out)["id"]))
    (q0, job0), (q1, job1), (q2, _) = ids
    assert q0 in run("job", "show", job0)  # searches every queue
    run("job", "reprioritize", job0, "--queue", q0, "--priority", "5")
    run("job", "run-now", job0, "--queue", q0)
    listed = json.loads(run("jobs", "list", "--queue", q0, "--json"))["jobs"]
    assert [row["id"] for row in listed] == [job0]
    run("job", "cancel", job1, "--queue", q1)
    run("queue", "pause", q2)
    run("queue", "resume", q2)
    run("queue", "purge", q2, "--state", "delayed", "--yes")
    status = run("status", "--json")
    assert all(q in status for q in queues)
    audit = run("events", "--audit", "--json")
    assert all(action in audit for action in ("cancel", "purge", "pause", "resume"))
    run("workers")
    run("schedules", "list")


def test_cli_plain_url_at_a_cluster_node_says_to_use_a_cluster_url(
    redis_cluster: ClusterSet,
) -> None:
    """Before: a bare "Redis error: 9034 127.0.0.1:7502" (redis-py strips MOVED)."""
    results = [
        cli("--url", f"redis://127.0.0.1:{port}", "--prefix", "moved", "status")
        for port in redis_cluster.ports
    ]
    # Some node does not own the registry key's slot: MOVED.
    moved = [r for r in results if r.returncode != 0]
    assert moved
    for result in moved:
        _one_line_error(result, 1, "is a Redis Cluster node")
        assert "redis+cluster://" in result.stderr
