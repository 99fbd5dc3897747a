"""When each of a worker's queues next needs a lease call (pure; no Redis, no clock).

A lease call does more than lease: it promotes due delayed jobs and requeues
expired leases of its queue (``lua/lease.lua``), and its reply says how long
until that queue's next ETA or lease deadline (``wake_ms``). An idle worker
must therefore call every queue it serves again when that time comes --
whatever the queue's position in its list (issue 9, items 1 and 5) -- and
may block on Redis until the earliest of those times, never longer than
``max_block``.

:class:`Pacing` keeps that state, one due time per queue (seconds on the
caller's monotonic clock, passed in as ``now``), so the dispatcher's loop
only asks "which queues are due?" and "until when may I block?". It is
pure: unit-tested without Redis or sleeping (``tests/test_pacing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Pacing"]


class Pacing:
    """Per-queue due times of the next lease call.

    Every queue starts due (the first round looks at all of them).

    Args:
        queues: the worker's queues, in its order (:meth:`due` keeps it).
        max_block: longest time, seconds, a queue goes without a lease call
            when its last reply reported nothing pending (``wake_ms`` -1):
            the periodic look that finds jobs made due by other means.

    Raises:
        ValueError: no queues, or ``max_block`` not > 0.
    """

    def __init__(self, queues: Sequence[str], max_block: float) -> None:
        if not queues:
            raise ValueError("pacing needs at least one queue")
        if not max_block > 0:
            raise ValueError("max_block must be > 0")
        self.max_block = max_block
        self._due = dict.fromkeys(queues, 0.0)
        self._more: set[str] = set()  # due only for room: the last lease was filled

    def leased(self, queue: str, now: float, asked: int, got: int, wake_ms: int) -> None:
        """Take the reply of a lease call made at ``now`` that asked for
        ``asked`` jobs (0: reports or maintenance only) and got ``got``;
        ``wake_ms`` is the reply's ms until the queue's next ETA or lease
        deadline (0: more is due now, -1: nothing pending).

        The queue is due again at once if it may hold more ready jobs (it
        filled a request for jobs) or more is due, else when its reply says,
        capped by ``max_block``. A maintenance-only call (``asked`` 0, made
        while the worker had no room) is paced by its reply alone: room is
        looked for when it frees up.

        A filled request (``got >= asked > 0``; lease.lua then leased with
        nothing else due) makes the queue due *for room* only: a worker
        without room does not call it again until room frees up (or
        ``max_block`` passes), so a full worker makes no maintenance-only
        call after each full lease.
        """
        self._more.discard(queue)
        if asked > 0 and got >= asked:
            self._due[queue] = now
            self._more.add(queue)
        elif wake_ms == 0:
            self._due[queue] = now
        elif wake_ms < 0:
            self._due[queue] = now + self.max_block
        else:
            self._due[queue] = now + min(wake_ms / 1000, self.max_block)

    def woken(self, queue: str | None, now: float) -> None:
        """A wake marker of ``queue`` arrived (None: of an unknown queue, e.g.
        after a failed wait): that queue -- or every queue -- is due now."""
        for q in self._due if queue is None else (queue,):
            if q in self._due:
                self._due[q] = min(self._due[q], now)
                self._more.discard(q)

    def _at(self, queue: str, room: bool) -> float:
        at = self._due[queue]
        return at if room or queue not in self._more else at + self.max_block

    def due(self, now: float, room: bool = True) -> list[str]:
        """The queues due at ``now``, in the worker's order (``room``: the
        worker has room for jobs; see :meth:`leased`)."""
        return [q for q in self._due if self._at(q, room) <= now]

    def next_due(self, room: bool = True) -> float:
        """The earliest due time of all queues (monotonic seconds)."""
        return min(self._at(q, room) for q in self._due)

    def block_for(self, now: float) -> float:
        """How long an idle worker (it has room) may block at ``now``: until
        the earliest due time, at least 0, at most ``max_block`` (seconds)."""
        return max(0.0, min(self.next_due() - now, self.max_block))
