"""The standalone exporter: queue metrics from Redis with no worker running.

``scheduler metrics --port 9464`` serves the
:class:`scheduler.metrics.queues.QueueCollector` and
:class:`scheduler.metrics.tasks.TaskStatsCollector` families of every
registered queue (or of ``-q`` queues) at ``http://127.0.0.1:9464/metrics``.
Run one per Redis (or more: they only read), so dashboards and alerts keep
their series when every worker of a queue is dead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.metrics.queues import QueueCollector
from scheduler.metrics.tasks import TaskStatsCollector

__all__ = ["Exporter", "start_exporter"]


class Exporter:
    """A running standalone exporter (see :func:`start_exporter`).

    Attributes:
        port: the port it listens on (the real one if 0 was asked for).
        address: the address it is bound to.
        queues: its :class:`QueueCollector`.
        tasks: its :class:`TaskStatsCollector`.
    """

    def __init__(
        self,
        server: Any,
        thread: threading.Thread,
        queues: QueueCollector,
        tasks: TaskStatsCollector,
    ) -> None:
        self._server = server
        self._thread = thread
        self.port: int = int(server.server_port)
        self.address: str = str(server.server_address[0])
        self.queues = queues
        self.tasks = tasks

    def close(self) -> None:
        """Stop serving and stop the refresh threads."""
        self.queues.stop()
        self.tasks.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_exporter(
    backend: Backend,
    port: int = defaults.METRICS_PORT,
    *,
    addr: str = defaults.METRICS_ADDR,
    queues: Sequence[str] | None = None,
    interval: float = 5.0,
) -> Exporter:
    """Serve the queue and task metrics of ``backend`` at ``http://addr:port/metrics``
    (daemon threads; read the first refresh before returning).

    Args:
        backend: the storage layer.
        port: TCP port (0 picks a free one; see :attr:`Exporter.port`).
        addr: address to bind (default loopback only,
            :data:`scheduler.defaults.METRICS_ADDR`).
        queues: queues to report; None = every registered queue, re-read at
            each refresh.
        interval: seconds between refreshes.

    Raises:
        OSError: the port cannot be bound.
        InvalidNameError: a malformed queue name.
    """
    collector = QueueCollector(backend, queues, interval)
    registry = CollectorRegistry()
    tasks = TaskStatsCollector(backend, queues, interval)
    registry.register(collector)
    registry.register(tasks)
    server, thread = start_http_server(port, addr=addr, registry=registry)
    collector.start()
    tasks.start()
    return Exporter(server, thread, collector, tasks)
