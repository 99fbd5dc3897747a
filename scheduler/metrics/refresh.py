"""A Prometheus collector served from a cache that a background thread
refreshes from Redis every ``interval`` seconds, so a scrape never touches
Redis (the base of :class:`~scheduler.metrics.queues.QueueCollector` and
:class:`~scheduler.metrics.tasks.TaskStatsCollector`)."""

from __future__ import annotations

import logging
import threading

import redis

__all__ = ["RefreshingCollector"]

log = logging.getLogger("scheduler.metrics")


class RefreshingCollector:
    """Calls :meth:`refresh` now and then every ``interval`` seconds in a
    daemon thread (:meth:`start` / :meth:`stop`); a failed refresh is logged
    and the last cache kept.

    Args:
        interval: seconds between refreshes.
    """

    #: Names the thread and the log line.
    what = "metrics"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        """Read Redis now and replace the cache (subclasses).

        Raises:
            redis.RedisError: Redis could not be read (the cache is kept).
        """
        raise NotImplementedError

    def start(self) -> None:
        """Refresh now (errors logged), then every ``interval`` seconds in a thread."""
        self._refresh_logged()
        self._thread = threading.Thread(
            target=self._run, name=f"scheduler-{self.what}-refresh", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the refresh thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._refresh_logged()

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except (redis.RedisError, OSError) as exc:
            log.warning("%s refresh failed: %s", self.what.replace("-", " "), exc)
