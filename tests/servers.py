"""Throwaway Redis Cluster and Redis Sentinel sets for tests and benchmarks.

:class:`ClusterSet` starts three ``redis-server --cluster-enabled yes`` on
free local ports, splits the 16384 slots between them (``CLUSTER
ADDSLOTSRANGE``), joins them (``CLUSTER MEET``) and waits for
``cluster_state:ok``. :class:`SentinelSet` starts one master, two replicas
and three ``redis-server --sentinel`` watching it as service ``mymaster``,
with ``min-replicas-to-write 1`` on every data node (see
``docs/operating.md``, "Running with Sentinel"). Both use the binary of
:func:`scheduler.devserver.find_server_binary` and stop everything on
:meth:`stop`. Nothing is kept on disk after the stop.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

import redis

from scheduler.devserver import find_server_binary

__all__ = ["ClusterSet", "SentinelSet", "cluster_port", "free_port"]

SLOTS = 16384


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (racy, like every such helper)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port <= 55535 whose cluster bus port (+10000) is free too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20000, 55535)
        if _bindable(port) and _bindable(port + 10000):
            return port


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout} s")
        time.sleep(0.05)


class _Processes:
    """Server processes sharing one temporary directory."""

    def __init__(self) -> None:
        binary = find_server_binary()
        if not binary:
            raise RuntimeError("no redis-server found")
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="scheduler-set-")
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int, *args: str, config: str | None = None) -> None:
        workdir = os.path.join(self.dir, str(port))
        os.makedirs(workdir, exist_ok=True)
        head = [self.binary]
        if config is not None:
            path = os.path.join(workdir, "sentinel.conf")
            with open(path, "w") as f:
                f.write(config)
            head = [self.binary, path, "--sentinel"]
        self.procs[port] = subprocess.Popen(
            [
                *head,
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", workdir),
                *("--save", "", "--appendonly", "no"),
                *("--logfile", os.path.join(workdir, "log")),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_up(self, port: int) -> None:
        """Wait until the process on ``port`` answers PING (30 s)."""
        try:
            _wait(lambda: _ping(port), 30, f"server on port {port} answering")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log_tail(port)}") from None

    def log_tail(self, port: int) -> str:
        """The last lines of the log of the process on ``port``."""
        try:
            with open(os.path.join(self.dir, str(port), "log")) as f:
                return "".join(f.readlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        subprocess.run(["rm", "-rf", self.dir], check=False)


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=1)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ping(port: int) -> bool:
    with contextlib.closing(_client(port)) as c:
        return bool(c.ping())


class ClusterSet:
    """Three masters of a Redis Cluster on free local ports, optionally with
    replicas (``replicas`` per master, for failover tests) and extra server
    arguments (``args``, e.g. ``min-replicas-to-write``).

    Attributes:
        ports: the masters' ports at start (slots split in three equal
            ranges, in order; a failover changes who serves them).
        replicas: each master's replica ports at start.
    """

    def __init__(self, masters: int = 3, *, replicas: int = 0, args: tuple[str, ...] = ()) -> None:
        self._procs = _Processes()
        self.ports = [cluster_port() for _ in range(masters)]
        #: Replica ports per master port (``replicas`` each), at start.
        self.replicas = {p: [cluster_port() for _ in range(replicas)] for p in self.ports}
        self._args = args

    @property
    def url(self) -> str:
        """``redis+cluster://`` URL listing every node as a seed."""
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"redis+cluster://{nodes}"

    def start(self, *, cover_all: bool = True) -> ClusterSet:
        """Start the nodes, assign slots (all of them unless ``cover_all`` is
        False: then the last range is left unassigned) and wait until every
        node agrees the cluster is up (or, without full coverage, knows
        every node)."""
        try:
            everyone = [*self.ports, *self.replica_ports]
            for port in everyone:
                self._procs.start(
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "2000",
                    *self._args,
                )
            for port in everyone:
                self._procs.wait_up(port)
            n = len(self.ports)
            for i, port in enumerate(self.ports):
                if not cover_all and i == n - 1:
                    continue
                lo, hi = SLOTS * i // n, SLOTS * (i + 1) // n - 1
                with contextlib.closing(_client(port)) as c:
                    c.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
            with contextlib.closing(_client(self.ports[0])) as c:
                for port in everyone[1:]:
                    c.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
            _wait(self._joined if not cover_all else self._ok, 20, "cluster up")
            if self.replica_ports:
                self._attach_replicas()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def replica_ports(self) -> list[int]:
        """Every replica's port (at start)."""
        return [r for rs in self.replicas.values() for r in rs]

    def _attach_replicas(self) -> None:
        """Make each replica replicate its master; wait until every link is up."""

        def known(port: int) -> bool:
            n = str(len(self.ports) + len(self.replica_ports))
            return self._info(port).get("cluster_known_nodes") == n

        for master, replicas in self.replicas.items():
            master_id = self.node_id(master)
            for port in replicas:
                _wait(functools.partial(known, port), 20, "replica knows the cluster")
                with contextlib.closing(_client(port)) as c:
                    c.execute_command("CLUSTER", "REPLICATE", master_id)

        def linked() -> bool:
            for port in self.replica_ports:
                with contextlib.closing(_client(port)) as c:
                    if c.info("replication").get("master_link_status") != "up":
                        return False
            return self._ok()

        _wait(linked, 30, "replicas linked")

    def _info(self, port: int) -> dict[str, str]:
        with contextlib.closing(_client(port)) as c:
            raw = c.execute_command("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return dict(line.split(":", 1) for line in text.strip().splitlines() if ":" in line)

    def _ok(self) -> bool:
        return all(self._info(p).get("cluster_state") == "ok" for p in self.ports)

    def _joined(self) -> bool:
        n = str(len(self.ports))
        return all(self._info(p).get("cluster_known_nodes") == n for p in self.ports)

    def node_id(self, port: int) -> str:
        """The cluster node id of the node on ``port``."""
        with contextlib.closing(_client(port)) as c:
            raw = c.execute_command("CLUSTER", "MYID")
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def owner(self, slot: int) -> int:
        """Port of the master serving ``slot``."""
        n = len(self.ports)
        return self.ports[min(n - 1, slot * n // SLOTS)]

    def stop(self) -> None:
        """Stop every node and remove their files."""
        self._procs.stop()

    def __enter__(self) -> ClusterSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SentinelSet:
    """One master, ``replicas`` replicas and three sentinels (service ``mymaster``).

    Every data node runs with ``min-replicas-to-write 1`` and
    ``min-replicas-max-lag 2``, so a master cut off from its replicas (the
    old master after a failover) refuses writes instead of accepting writes
    the new master will never see.

    Attributes:
        data_ports: master first, then the replicas.
        sentinel_ports: the sentinels' ports.
    """

    service = "mymaster"

    def __init__(self, replicas: int = 2) -> None:
        self._procs = _Processes()
        self.data_ports = [free_port() for _ in range(1 + replicas)]
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        """``redis+sentinel://`` URL naming the sentinels and the service."""
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{self.service}"

    def start(self) -> SentinelSet:
        """Start the nodes and wait until every sentinel sees every replica
        and the other sentinels."""
        safety = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
        master = self.data_ports[0]
        try:
            self._procs.start(master, *safety)
            for port in self.data_ports[1:]:
                self._procs.start(port, "--replicaof", "127.0.0.1", str(master), *safety)
            for port in self.data_ports:
                self._procs.wait_up(port)
            config = (
                f"sentinel monitor {self.service} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {self.service} 2000\n"
                f"sentinel failover-timeout {self.service} 10000\n"
                f"sentinel parallel-syncs {self.service} 2\n"
            )
            for port in self.sentinel_ports:
                self._procs.start(port, config=config)
            _wait(self._ready, 30, "sentinels ready")
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        with contextlib.closing(_client(self.data_ports[0])) as c:
            info = c.info("replication")
        online = sum(
            1
            for k, v in info.items()
            if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
        )
        if online < len(self.data_ports) - 1:
            return False
        for port in self.sentinel_ports:
            with contextlib.closing(_client(port)) as c:
                info = c.execute_command("SENTINEL", "MASTER", self.service)
            fields = (
                dict(zip(info[::2], info[1::2], strict=False)) if isinstance(info, list) else info
            )
            fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
            if int(fields["num-slaves"]) < len(self.data_ports) - 1:
                return False
            if int(fields["num-other-sentinels"]) < len(self.sentinel_ports) - 1:
                return False
        return True

    def master_port(self) -> int:
        """Port of the current master as the first sentinel sees it."""
        with contextlib.closing(_client(self.sentinel_ports[0])) as c:
            _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def failover(self, timeout: float = 30.0) -> int:
        """``SENTINEL FAILOVER`` and wait until a new master is promoted and
        has a replica again; returns its port."""
        old = self.master_port()
        # A forced failover promotes a replica as it is: writes the master
        # acknowledged but had not yet streamed to it are lost (asynchronous
        # replication, docs/design.md). A test that fails over *after* its
        # writes means those writes, so let every replica acknowledge them
        # first (WAIT); writes racing the failover stay racing it.
        with contextlib.closing(_client(old)) as c:
            c.execute_command("WAIT", len(self.data_ports) - 1, int(timeout * 1000))
        with contextlib.closing(_client(self.sentinel_ports[0])) as c:
            c.execute_command("SENTINEL", "FAILOVER", self.service)
        _wait(lambda: self.master_port() != old, timeout, "new master announced")
        new = self.master_port()

        def promoted() -> bool:
            with contextlib.closing(_client(new)) as c:
                info = c.info("replication")
            return info.get("role") == "master" and int(info.get("connected_slaves", 0)) >= 1

        _wait(promoted, timeout, "new master with a replica")

        # Every sentinel names the new master and none still runs the failover
        # (a SENTINEL FAILOVER before that gets INPROG).
        def settled() -> bool:
            for port in self.sentinel_ports:
                with contextlib.closing(_client(port)) as c:
                    info = c.execute_command("SENTINEL", "MASTER", self.service)
                fields = (
                    dict(zip(info[::2], info[1::2], strict=False))
                    if isinstance(info, list)
                    else info
                )
                fields = {_text(k): _text(v) for k, v in fields.items()}
                if int(fields["port"]) != new or "failover_in_progress" in fields["flags"]:
                    return False
            return True

        _wait(settled, timeout, "failover finished on every sentinel")
        return new

    def stop(self) -> None:
        """Stop every process and remove their files."""
        self._procs.stop()

    def __enter__(self) -> SentinelSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
