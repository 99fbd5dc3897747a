"""Named reply codes of the Lua scripts: one :class:`enum.IntEnum` per script family.

Each script answers with small integers (per job for the batch scripts).
``lua/lib/codes.lua`` defines the same outcomes as Lua constants named
``<FAMILY>_<MEMBER>`` -- e.g. :attr:`FailCode.ALREADY_DEAD` is
``FAIL_ALREADY_DEAD`` -- with the same values (``tests/test_reply_codes.py``
checks that both sides match; :data:`FAMILIES` maps each Lua prefix to its
enum). The script wrappers (:mod:`scheduler.backend.scripts`,
:mod:`scheduler.backend.cron_scripts`) return these members.

Values are per family: ``2`` is ``COMPLETE_ALREADY_RECORDED`` but
``FAIL_DEAD``, so compare a reply only with members of its own enum (an
``IntEnum`` still compares equal to its plain integer, so code that tests
``== 1`` keeps working). Within every job family ``0`` means the caller's
lease or the job's state no longer allows the change and ``-1`` means the
job (or schedule) does not exist.

Idempotency: a repeated call answers with the outcome it already applied
(the ``ALREADY_*`` members), never with a first-time outcome nor with
``STALE``: e.g. repeating a ``fail`` that scheduled a retry answers
:attr:`FailCode.ALREADY_RETRY_SCHEDULED`, even after the retry was promoted
to ready. Which lease outcome a record shows is decided in one place,
``lease_status`` of ``lua/lib/transitions.lua``.
"""

from __future__ import annotations

import enum

__all__ = [
    "FAMILIES",
    "CancelCode",
    "CompleteCode",
    "ConfigCode",
    "EnqueueCode",
    "FailCode",
    "FireCode",
    "HeartbeatCode",
    "PauseCode",
    "ReleaseCode",
    "RemoveCode",
    "ReprioritizeCode",
    "RetryCode",
    "RunNowCode",
    "StartCode",
    "UpsertCode",
]


class EnqueueCode(enum.IntEnum):
    """Per job of ``enqueue.lua``."""

    CREATED = 1
    EXISTED = 0  # the id existed (or came earlier in the same call): nothing written


class CompleteCode(enum.IntEnum):
    """Per job of ``complete.lua``."""

    RECORDED = 1
    ALREADY_RECORDED = 2  # an earlier run of the same call recorded it
    STALE = 0  # the lease was lost (expired, cancelled, leased again): refused
    GONE = -1  # no such job


class FailCode(enum.IntEnum):
    """Per job of ``fail.lua``."""

    RETRY_SCHEDULED = 1  # state failed, waiting for its retry ETA
    DEAD = 2
    ALREADY_RETRY_SCHEDULED = 3  # an earlier run scheduled the retry (maybe promoted since)
    ALREADY_DEAD = 4  # an earlier run sent it dead
    STALE = 0
    GONE = -1

    @property
    def retried(self) -> bool:
        """A retry is scheduled (by this call or an earlier run of it)."""
        return self in (FailCode.RETRY_SCHEDULED, FailCode.ALREADY_RETRY_SCHEDULED)

    @property
    def dead(self) -> bool:
        """The job went dead (by this call or an earlier run of it)."""
        return self in (FailCode.DEAD, FailCode.ALREADY_DEAD)


class ReleaseCode(enum.IntEnum):
    """Per job of ``release.lua``."""

    RELEASED = 1
    ALREADY_RELEASED = 2  # an earlier run of the same call released it
    STALE = 0  # the lease was lost (e.g. expired and requeued): not given back by us
    GONE = -1


class StartCode(enum.IntEnum):
    """Per job of ``start.lua`` (the worker began running the job)."""

    STARTED = 1
    ALREADY_STARTED = 2  # an earlier run of this call stamped it
    STALE = 0  # the lease was lost (expired, released, cancelled, leased again; or the
    # record was damaged: it went dead)
    GONE = -1


class HeartbeatCode(enum.IntEnum):
    """Per job of ``heartbeat.lua`` when the lease was not extended (an
    extended lease answers its new deadline, ms, always > 1)."""

    REPORTED = 1  # this lease already reported the job: not lost, nothing to extend
    LOST = 0  # expired (also into dead), released, cancelled or leased again
    GONE = -1


class ProgressCode(enum.IntEnum):
    """``progress.lua``."""

    STORED = 1
    LOST = 0  # the lease is not held (expired, reported, cancelled, leased again)
    GONE = -1


class CancelCode(enum.IntEnum):
    """``cancel.lua``."""

    CANCELLED = 1
    ALREADY_FINAL = 0  # succeeded, dead or cancelled: nothing changed
    NO_JOB = -1


class RetryCode(enum.IntEnum):
    """Per job of ``retry.lua`` (operator retry)."""

    REQUEUED = 1
    NOT_RETRYABLE = 0  # ready, delayed or leased: left alone
    NO_JOB = -1


class ReprioritizeCode(enum.IntEnum):
    """``reprioritize.lua``."""

    CHANGED = 1
    NOT_WAITING = 0  # leased or finished
    NO_JOB = -1


class RunNowCode(enum.IntEnum):
    """``run_now.lua``."""

    PROMOTED = 1
    NOT_DELAYED = 0
    NO_JOB = -1


class UpsertCode(enum.IntEnum):
    """``schedule_upsert.lua`` (first element of its reply)."""

    CREATED = 1
    UPDATED = 2
    UNCHANGED = 0
    REPLACED = 3  # a damaged record was replaced whole (history lost)


class PauseCode(enum.IntEnum):
    """``schedule_pause.lua`` (pause and resume)."""

    CHANGED = 1
    UNCHANGED = 0  # already in that state (resume: it was not paused)
    NO_SCHEDULE = -1


class RemoveCode(enum.IntEnum):
    """``schedule_remove.lua``."""

    REMOVED = 1
    NO_SCHEDULE = 0


class FireCode(enum.IntEnum):
    """``cron_fire.lua`` (one per entry of its reply)."""

    FIRED = 1
    STALE = 0  # another cron process fired it, or the record changed: nothing written
    EARLY = 2  # a fire time is after the server clock: nothing written
    DROPPED = 3  # damaged or not active: taken out of the cron set, record kept
    LATE = 4  # the server clock reached the entry's "valid until": nothing written; plan again


class ConfigCode(enum.IntEnum):
    """``queue_config.lua`` (first element of its reply)."""

    SET = 1
    PROMOTING = 0  # aging: due jobs were promoted first, rate unchanged; call again


#: Lua constant prefix -> enum: ``lua/lib/codes.lua`` defines ``<prefix>_<member>``.
FAMILIES: dict[str, type[enum.IntEnum]] = {
    "ENQUEUE": EnqueueCode,
    "COMPLETE": CompleteCode,
    "FAIL": FailCode,
    "RELEASE": ReleaseCode,
    "START": StartCode,
    "HEARTBEAT": HeartbeatCode,
    "PROGRESS": ProgressCode,
    "CANCEL": CancelCode,
    "RETRY": RetryCode,
    "REPRIORITIZE": ReprioritizeCode,
    "RUN_NOW": RunNowCode,
    "UPSERT": UpsertCode,
    "PAUSE": PauseCode,
    "REMOVE": RemoveCode,
    "FIRE": FireCode,
    "CONFIG": ConfigCode,
}
