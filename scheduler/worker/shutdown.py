"""The worker's shutdown path: stop leasing, release, exit.

:class:`Shutdown` is step 2 of the dispatch loop (:mod:`.dispatcher`) once
:meth:`~.worker.Worker.stop` was called: the waiter is closed and the leases
its last call made are taken (:meth:`Shutdown._reclaim`), buffered jobs are
released back to ready at once, running ones after the grace period; Redis
failing does not keep the worker (what it cannot release is left to lease
expiry: the jobs run again, at-least-once).
"""

from __future__ import annotations

import logging
import time

import redis

from scheduler.worker.dispatcher import Dispatcher
from scheduler.worker.waiter import Waiter

__all__ = ["Shutdown"]

log = logging.getLogger("scheduler.worker")


class Shutdown(Dispatcher):
    """The dispatch loop with its shutdown step (see :class:`Dispatcher`)."""

    def _wind_down(self, waiter: Waiter) -> bool:
        """Step 2; True when the worker may exit."""
        if not self._waiter_closed:  # no more leasing: cut the waiter's pending lease
            self._waiter_closed = True
            self._reclaim(waiter.close())
        return self._shutdown_step()

    def _reclaim(self, lost_request: tuple[str, str] | None) -> None:
        """After the waiter stopped: take the leases its last call made (a
        message still in the inbox, or a reply cut off by the close: the
        same request is asked again and its reply cache answers), and
        release buffered jobs if stopping."""
        try:
            self._take_messages()
            if lost_request is not None:
                q, request = lost_request
                reply = self.backend.scripts.lease(self._keys[q], 0, self.worker_id, request)
                self._take_reply(q, reply, 0)
            if self._stopping.is_set() or not self._book.running:
                leftover = self._book.take_buffered()
                if leftover:
                    self._rounds.release(leftover)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not release jobs leased during shutdown: %s", exc)

    def _shutdown_step(self) -> bool:
        """While stopping: release buffered jobs at once, running ones after the
        grace period. Returns True when the worker may exit.

        Redis failing (e.g. a failover longer than the grace period) does not
        keep the worker: what it could not release is tried again at the
        deadline, and what still fails then is left to lease expiry (the
        jobs run again: at-least-once)."""
        if self._book.buffered:
            try:
                self._rounds.release(self._book.take_buffered())
            except (redis.RedisError, OSError) as exc:  # still held: tried again below
                log.warning("could not release buffered jobs: %s", exc)
        if not len(self._book) and not self._book.pending:
            return True
        if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
            try:
                if self._book.pending:
                    self._rounds.run(0, [])
                self._rounds.release(self._book.snapshot())
            except (redis.RedisError, OSError) as exc:
                log.warning(
                    "could not report or release %d held job(s) at shutdown: %s; "
                    "their leases expire and they run again",
                    len(self._book),
                    exc,
                )
            return True
        return False
