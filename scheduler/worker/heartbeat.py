"""Background heartbeats: job leases (batched per queue) and worker liveness
(the worker registry, written through
:class:`scheduler.backend.workers.WorkerPresence`)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import redis

from scheduler.backend.caller import retries_until
from scheduler.backend.codes import HeartbeatCode
from scheduler.backend.keys import QueueKeys
from scheduler.backend.scripts import Scripts
from scheduler.backend.workers import WorkerPresence
from scheduler.worker.execution import LeasedJob

__all__ = ["Heartbeater"]

log = logging.getLogger("scheduler.worker")

#: Longest time between two heartbeat rounds while jobs are held, seconds.
_LONGEST_INTERVAL = 10.0

# Heartbeat replies meaning the lease is no longer ours (a deadline is > 1).
_LOST = (HeartbeatCode.LOST, HeartbeatCode.GONE)


class Heartbeater:
    """Extends the leases of all in-flight jobs, one script call per queue,
    and refreshes this worker's registry entry.

    The period is a third of the shortest lease among in-flight jobs
    (clamped to 0.05..10 s), so a lease survives two lost heartbeats.
    A job whose lease turns out stale is marked ``lost``; its result will be
    refused and the worker logs it.

    Args:
        scripts: the app's scripts.
        keys_for: queue name -> its :class:`scheduler.backend.keys.QueueKeys`.
        snapshot: returns the current in-flight jobs (thread-safe copy).
        registry: the worker registry (the backend).
        worker_id: this worker's id.
        info: static worker details published in the registry.
    """

    def __init__(
        self,
        scripts: Scripts,
        keys_for: Callable[[str], QueueKeys],
        snapshot: Callable[[], list[LeasedJob]],
        registry: WorkerPresence,
        worker_id: str,
        info: dict[str, str],
    ) -> None:
        self._scripts = scripts
        self._keys_for = keys_for
        self._snapshot = snapshot
        self._registry = registry
        self._worker_id = worker_id
        self._info = {"host": socket.gethostname(), "pid": str(os.getpid()), **info}
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._next_registry = 0.0
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name="scheduler-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove this worker from the registry."""
        self._stop.set()
        self._changed.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        try:
            self._registry.remove_worker(self._worker_id)
        except redis.RedisError as exc:
            log.warning("could not deregister worker: %s", exc)

    def _interval(self, jobs: list[LeasedJob]) -> float:
        if not jobs:
            return 5.0
        shortest = min(j.options.lease_ms for j in jobs) / 1000
        return min(_LONGEST_INTERVAL, max(0.05, shortest / 3))

    def notify(self, shortest_lease_ms: int | None = None) -> None:
        """Tell the heartbeater the in-flight set changed (a job was leased), so a
        short lease gets its first heartbeat in time.

        ``shortest_lease_ms``: the shortest lease just taken, ms (None: unknown).
        A lease of at least three longest intervals (30 s) gets a beat in time
        anyway -- the heartbeater never sleeps longer than that interval -- so
        it does not wake the thread: a wake-up per lease reply took ~20% of
        the dispatcher's time in a drain (docs/benchmarks.md, "Drain after
        the worker and safety changes").
        """
        if shortest_lease_ms is not None and shortest_lease_ms >= 3000 * _LONGEST_INTERVAL:
            return
        self._changed.set()

    def _run(self) -> None:
        # A beat retrying through a failover gives up once stop() is called.
        with retries_until(lambda: 0.0 if self._stop.is_set() else None):
            self._beat_until_stopped()

    def _beat_until_stopped(self) -> None:
        last = time.monotonic()
        due = last + self._interval(self._snapshot())
        while True:
            self._changed.wait(max(0.0, due - time.monotonic()))
            if self._stop.is_set():
                return
            if self._changed.is_set():
                self._changed.clear()
                due = min(due, last + self._interval(self._snapshot()))
                if time.monotonic() < due:
                    continue
            try:
                self.beat()
            except (redis.RedisError, OSError) as exc:
                log.warning("heartbeat failed: %s", exc)
            last = time.monotonic()
            due = last + self._interval(self._snapshot())

    def beat(self) -> None:
        """Send one round of heartbeats now."""
        by_queue: dict[str, list[LeasedJob]] = {}
        for job in self._snapshot():
            if not job.lost:
                by_queue.setdefault(job.queue, []).append(job)
        for queue, jobs in by_queue.items():
            codes = self._scripts.heartbeat(
                self._keys_for(queue),
                [(j.id, j.token) for j in jobs],
            )
            # 1: reported meanwhile under this lease (not lost). A job may also
            # have left the in-flight set since the snapshot: only a job still
            # in flight can have lost its lease.
            current = {id(j) for j in self._snapshot()}
            for job, code in zip(jobs, codes, strict=True):
                if code in _LOST and id(job) in current:
                    job.lost = True
                    log.warning(
                        "job %s task=%s queue=%s attempt=%d lease lost (%s); "
                        "its result will be refused",
                        job.id,
                        job.task,
                        queue,
                        job.attempt,
                        "job gone"
                        if code == HeartbeatCode.GONE
                        else "expired, cancelled or re-leased",
                    )
        now = time.monotonic()
        if now >= self._next_registry:
            self._next_registry = now + 5.0
            held = self._snapshot()
            self.announce(len(held), sum(1 for job in held if job.started))

    def announce(self, inflight: int, running: int | None = None) -> None:
        """Write this worker's registry entry (it expires
        :data:`~scheduler.backend.workers.WORKER_TTL` s after the last publish).

        Raises:
            redis.RedisError: the write failed.
        """
        now = time.time()
        fields = {
            **self._info,
            "inflight": str(inflight),
            "running": str(inflight if running is None else running),
            "processed": str(self.processed),
            "beat": repr(now),
        }
        self._registry.publish_worker(self._worker_id, fields, now)
