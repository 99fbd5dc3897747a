"""What the worker's threads tell its dispatcher: one small class per message.

The pool's threads, the :class:`~.waiter.Waiter` and :meth:`Worker.stop`
put these into the dispatcher's inbox; the dispatcher handles them with one
``match`` (``Dispatcher._handle``; finished jobs on a fast path). Named
messages instead of tagged tuples, as Sidekiq's ``UnitOfWork``
(``lib/sidekiq/fetch.rb``).
"""

from __future__ import annotations

from typing import NamedTuple

import attrs

from scheduler.backend.scripts import LeaseReply
from scheduler.worker.book import LeaseEntry
from scheduler.worker.execution import LeasedJob, Outcome

__all__ = ["Finished", "Leased", "Message", "Stop", "Woken"]


class Finished(NamedTuple):
    """A job's task returned or raised (from a pool thread); its outcome is
    owed to Redis. A named tuple, not an attrs class like the others: one
    is made per job, and the dispatcher takes it on a fast path
    (``Dispatcher._take_messages``)."""

    job: LeasedJob
    outcome: Outcome


@attrs.frozen
class Leased:
    """The waiter's blocking wait ended and the lease pipelined behind it ran.

    Attributes:
        queue: the queue the lease was made in.
        reply: the lease reply (possibly no jobs).
        asked: how many jobs the lease asked for.
        woken: the queue whose wake marker was taken; None if the wait
            timed out.
        started: the reply's first job, already started by the waiter's
            thread itself (see :mod:`~.waiter`, "Starting the first job");
            None if none was.
    """

    queue: str
    reply: LeaseReply
    asked: int
    woken: str | None
    started: LeaseEntry | None = None


@attrs.frozen
class Woken:
    """Look at the queues now: ``queue``'s (None: every queue's) work may be
    waiting, e.g. after the waiter's wait failed and a marker may be lost."""

    queue: str | None = None


@attrs.frozen
class Stop:
    """:meth:`Worker.stop` was called: wake the dispatcher to wind down."""


Message = Finished | Leased | Woken | Stop
