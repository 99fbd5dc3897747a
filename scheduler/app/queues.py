"""Queue control: pause, resume, aging, limits and purge (part of
:class:`scheduler.Scheduler`).

Each change is one script call (``queue_config``, ``queue_limit``,
``purge``) that validates everything before it writes, and names the actor
in the queue's audit event (see :func:`scheduler.validation.resolve_actor`).
"""

from __future__ import annotations

from scheduler import defaults
from scheduler.backend import Backend
from scheduler.errors import ValidationError
from scheduler.limits import QueueLimits, Rate, check_concurrency, parse_rate
from scheduler.priority import validate_aging_rate
from scheduler.validation import resolve_actor, shown, validate_task_name

__all__ = ["PURGE_STATES", "QueueControl"]

#: The job sets :meth:`QueueControl.purge` empties (``done`` = succeeded and
#: cancelled records; ``delayed`` includes failed jobs awaiting a retry).
PURGE_STATES = ("ready", "delayed", "leased", "dead", "done")


class QueueControl:
    """Changes to a queue's settings and job sets; mixed into
    :class:`scheduler.Scheduler`."""

    backend: Backend

    def pause(self, queue: str, *, actor: str | None = None) -> bool:
        """Stop workers leasing from ``queue`` (enqueue continues).

        Args:
            queue: the queue (registered if new).
            actor: who asks, named in the audit event (default
                ``$SCHEDULER_ACTOR`` or ``user@host``; the same for
                :meth:`resume`, :meth:`set_aging` and :meth:`purge`).

        Returns:
            True if paused now, False if it already was (no audit event).

        Raises:
            InvalidNameError: a malformed queue name.
            ValidationError: a bad ``actor``. Nothing is written when raised.
        """
        keys = self.backend.queue(queue)  # validates before any write
        who = resolve_actor(actor)
        self.backend.register_queue(queue)
        return self.backend.scripts.queue_config(keys, "paused", "1", actor=who) != "1"

    def set_limits(
        self,
        queue: str,
        *,
        task: str | None = None,
        concurrency: int | None = None,
        rate: str | Rate | None = None,
        clear_concurrency: bool = False,
        clear_rate: bool = False,
        actor: str | None = None,
    ) -> QueueLimits:
        """Set (or clear) the concurrency and rate limits of ``queue``, or of
        ``task`` in it; enforced by the lease script across all workers
        (:mod:`scheduler.limits`: ``rate`` like ``"100/m"`` is a token
        bucket). A limit not named is left as it is. Returns the queue's
        limits afterwards. A change writes an audit event (action ``limit``,
        detail ``"<task or empty>;<concurrency>;<rate>"`` as stored
        afterwards) naming ``actor`` (default: :func:`resolve_actor`).

        Raises:
            ValidationError: a bad name, ``concurrency`` (an int >= 1) or
                ``rate`` (does not parse), a limit both set and cleared, or a
                bad ``actor``; nothing is written.
        """
        keys = self.backend.queue(queue)
        who = resolve_actor(actor)
        scope = "" if task is None else validate_task_name(task)
        conc = "-" if clear_concurrency else ""
        if concurrency is not None:
            if clear_concurrency:
                raise ValidationError("give concurrency or clear_concurrency, not both")
            conc = str(check_concurrency(concurrency))
        rate_text = "-" if clear_rate else ""
        if rate is not None:
            if clear_rate:
                raise ValidationError("give rate or clear_rate, not both")
            rate_text = (rate if isinstance(rate, Rate) else parse_rate(rate)).encode()
        self.backend.register_queue(queue)
        self.backend.scripts.queue_limit(keys, scope, conc, rate_text, actor=who)
        return self.backend.queue_limits(queue)

    def resume(self, queue: str, *, actor: str | None = None) -> bool:
        """Let workers lease from ``queue`` again (wakes an idle worker).

        Returns:
            True if resumed now, False if it was not paused (no audit event).

        Raises:
            InvalidNameError: a malformed queue name (nothing is written).
            ValidationError: a bad ``actor`` (nothing is written).
        """
        keys = self.backend.queue(queue)
        return (
            self.backend.scripts.queue_config(keys, "paused", "0", actor=resolve_actor(actor))
            == "1"
        )

    def set_aging(self, queue: str, aging: float, *, actor: str | None = None) -> bool:
        """Set ``queue``'s aging rate: priority units gained per second of waiting.

        From now on every waiting job gains ``aging`` per second: a job's
        effective priority is its priority plus the aging accrued at each
        rate while it waited (``docs/design.md``, "Ordering"); jobs already
        waiting keep what they accrued, nothing is rescored. 0 is strict
        priority (accrued aging is kept). Due delayed jobs are promoted
        first, in bounded script calls.

        Args:
            queue: the queue name.
            aging: rate in ``[0, MAX_AGING_RATE]`` (1e6) priority units per
                second; ``int`` or ``float``, not ``bool``.

        Returns:
            True if the rate changed (an audit event names ``actor``).

        Raises:
            InvalidPriorityError: not a real number, negative, not finite or
                above :data:`scheduler.priority.MAX_AGING_RATE`.
            InvalidNameError: a malformed queue name.
            ValidationError: a bad ``actor``.
            Nothing is written when either is raised.
        """
        keys = self.backend.queue(queue)  # validates before any write
        value = validate_aging_rate(aging)
        who = resolve_actor(actor)
        self.backend.register_queue(queue)
        old = self.backend.scripts.queue_config(keys, "aging", repr(value), actor=who)
        try:
            return float(old) != value
        except ValueError:  # a damaged stored value: it was replaced
            return True

    def purge(self, queue: str, state: str, *, actor: str | None = None) -> int:
        """Delete every job of ``queue`` in one state set, a bounded batch
        (:data:`scheduler.defaults.PURGE_BATCH`) per script call until none is
        left. Each call that deleted jobs writes an audit event (action
        ``purge``, ``actor``, how many). Workers of purged leased jobs are
        refused when they report.

        Args:
            queue: the queue.
            state: ``ready``, ``delayed`` (includes failed jobs awaiting a
                retry), ``leased``, ``dead`` or ``done`` (succeeded and
                cancelled records).

        Returns:
            How many jobs were deleted.

        Raises:
            ValidationError: unknown ``state`` or bad ``actor``;
                InvalidNameError: a malformed queue name.
        """
        keys = self.backend.queue(queue)
        if state not in PURGE_STATES:
            raise ValidationError(
                f"cannot purge {shown(state)}; use one of {', '.join(PURGE_STATES)}"
            )
        who = resolve_actor(actor)
        deleted = 0
        while n := self.backend.scripts.purge(keys, state, defaults.PURGE_BATCH, actor=who):
            deleted += n
        return deleted
