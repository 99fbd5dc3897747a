"""How concurrent cron processes share the due schedules of a queue.

No leader is elected and nothing is stored: each process walks a queue's
due list (schedule ids sorted by id) from its own *home* place, chosen at
random once and kept, so its *arc* -- from its home to where it meets
schedules another process already fired -- stays about the same second after
second. That arc is what it plans ahead while it waits
(:meth:`Share.arc`); what is left after it is stolen from a random place.
A process that fired less than half a window in its last burst (its home is
next to another's) chooses a new home.

Pure bookkeeping: no Redis, no clock; the randomness is seeded (tests).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from scheduler.backend.schedules import DueSchedule

__all__ = ["Share", "leading"]


def leading(chunk: Sequence[tuple[str, int]], read: list[DueSchedule]) -> list[DueSchedule]:
    """The records ``read`` of the leading run of ``chunk`` (ids in walk
    order) that were all still due: up to the first one gone."""
    kept: list[DueSchedule] = []
    for (sid, _), due in zip(chunk, read, strict=False):
        if due.schedule_id != sid:
            break
        kept.append(due)
    return kept


class Share:
    """One cron process's places in the due lists of its queues, and how
    much it fired there.

    Args:
        per_call: schedules in one window (``cron_fire`` call).
        seed: seed of the home and stealing places; None = random.

    A *burst* is one :meth:`scheduler.cron.CronRunner.run_once`: it starts
    with :meth:`begin_burst`, counts the schedules fired per queue
    (:meth:`add`) and ends with :meth:`end_burst`.
    """

    def __init__(self, per_call: int, seed: int | None = None) -> None:
        self.per_call = per_call
        self._random = random.Random(seed)
        #: Per queue: the schedule id where this process's walks start.
        self._home: dict[str, str] = {}
        #: Per queue: schedules fired in the last burst.
        self._last: dict[str, int] = {}
        #: Per queue: schedules fired in the current burst so far.
        self._burst: dict[str, int] = {}

    def begin_burst(self) -> None:
        """Start counting a new burst."""
        self._burst = {}

    def in_burst(self, queue: str) -> bool:
        """True once ``queue`` was walked (or sent to) in the current burst."""
        return queue in self._burst

    def add(self, queue: str, fired: int) -> None:
        """Count ``fired`` more schedules fired in ``queue`` in this burst."""
        self._burst[queue] = self._burst.get(queue, 0) + fired

    def end_burst(self) -> None:
        """Remember what each queue's burst fired; a process that fired less
        than half a window in a queue (its home next to another process's)
        gives up its home there."""
        self._last.update(self._burst)
        for queue, fired in self._burst.items():
            if 2 * fired < self.per_call:
                self._home.pop(queue, None)

    def rotate(
        self, queue: str, due: list[tuple[str, int]], *, home: bool
    ) -> list[tuple[str, int]]:
        """``due`` (non-empty, sorted by id) rotated to start at this process's
        home place (``home``: the first id at or after its home id) or at a
        random place. The first home place is chosen at random and kept."""
        start = -1
        cursor = self._home.get(queue)
        if home and cursor is not None:
            start = next((i for i, (sid, _) in enumerate(due) if sid >= cursor), -1)
        if start < 0:
            start = self._random.randrange(len(due))
            if home:
                self._home[queue] = due[start][0]
        return due[start:] + due[:start]

    def arc(self, queue: str, upcoming: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """The part of ``upcoming`` (non-empty) this process expects to fire:
        from its home place on, as many as it fired in its last burst plus
        one window (all of them the first time). Five processes thus plan
        about a fifth each instead of everything each."""
        last = self._last.get(queue)
        count = len(upcoming) if last is None else last + self.per_call
        return self.rotate(queue, upcoming, home=True)[:count]
