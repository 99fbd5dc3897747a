"""Validation of names and numbers that reach Redis.

Queue names, task names, schedule ids, worker ids and the key prefix are
checked against conservative character sets, so that none can inject into
another key's name, break a ``{hash tag}``, or collide with the record
separator used inside job records (``\\x1f``).

Job ids are wider (natural keys such as ``thumb:uploads/a.png``): a job id
is never part of a key name -- it is a hash field of the queue's ``jobs``
hash and the tail of ``seq:id`` set members (the sequence is a fixed 11
characters, so the id may hold ``:``) -- so only what can break a *value*
it is written into is refused (:func:`validate_job_id`).
"""

from __future__ import annotations

import getpass
import math
import os
import re
import socket

from scheduler.defaults import ACTOR_ENV
from scheduler.errors import InvalidNameError, InvalidPriorityError, ValidationError

__all__ = [
    "JOB_ID_MAX",
    "default_actor",
    "resolve_actor",
    "shown",
    "validate_finite",
    "validate_job_id",
    "validate_prefix",
    "validate_queue_name",
    "validate_schedule_id",
    "validate_task_name",
    "validate_worker_id",
]

_QUEUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
#: Longest job id, characters.
JOB_ID_MAX = 200
_TASK_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.:<>-]{0,199}")
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,31}")
_SCHEDULE_RE = re.compile(r"[A-Za-z0-9_.:@+=~-]{1,128}")
_WORKER_RE = re.compile(r"[A-Za-z0-9_.:@+=~-]{1,200}")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message: never raises (a huge ``int``'s
    repr does; so may a user object's), at most ``limit`` characters."""
    try:
        text = repr(value)
    except Exception:  # the value's own repr fails: name its type instead
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(kind: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidNameError(f"invalid {kind} {shown(value)}: {rule}")
    return value


def validate_queue_name(name: object) -> str:
    """Return ``name`` if it is a valid queue name.

    Rule: 1-64 characters from ``A-Z a-z 0-9 _ . : -``, starting with a
    letter or digit. Raises :class:`InvalidNameError` otherwise.
    """
    return _check("queue name", name, _QUEUE_RE, "1-64 of [A-Za-z0-9_.:-], starting alphanumeric")


def validate_job_id(job_id: object) -> str:
    """Return ``job_id`` if valid: 1-200 printable characters (any script),
    except the space and ``,``.

    Refused, and why:

    * control characters (``\\x00``-``\\x1f``, ``\\x7f``, and other
      non-printable code points, e.g. the record separator ``\\x1f`` of job
      records, line breaks that would forge a log line or break the CLI's
      one-job-per-line output) and lone surrogates (not storable as UTF-8);
    * whitespace (a space, a tab, ...): shells and the CLI's tables split on it,
      so ``scheduler job show ID`` could not name the job;
    * ``,``: the scripts join job ids with ``,`` in event stream entries
      (``j``), the ``finished`` pub/sub message, the lease reply cache and the
      concurrency-limit holder lists (``lua/lib/signals.lua``, ``lease.lua``,
      ``lib/limits.lua``).

    Everything else is safe: a job id is never part of a key name (it is a
    hash field and the tail of ``seq:id`` members), so ``:``, ``/``, ``{``,
    ``}`` and non-ASCII letters cannot inject into a key or a hash tag.

    Raises:
        InvalidNameError: not a ``str``, empty, longer than
            :data:`JOB_ID_MAX` characters, or holding a refused character.
    """
    if (
        not isinstance(job_id, str)
        or not 1 <= len(job_id) <= JOB_ID_MAX
        or not job_id.isprintable()
        or " " in job_id
        or "," in job_id
    ):
        raise InvalidNameError(
            f"invalid job id {shown(job_id)}: 1-{JOB_ID_MAX} printable characters, "
            "no whitespace and no ','"
        )
    return job_id


def validate_task_name(name: object) -> str:
    """Return ``name`` if it is a valid task name (``module.path:qualname`` style).

    Rule: 1-200 characters from ``A-Z a-z 0-9 _ . : < > -``, starting with a
    letter or underscore. Raises :class:`InvalidNameError` otherwise.
    """
    return _check("task name", name, _TASK_RE, "1-200 of [A-Za-z0-9_.:<>-], starting [A-Za-z_]")


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a valid key prefix (1-32 of ``A-Z a-z 0-9 _ . : -``)."""
    return _check(
        "key prefix", prefix, _PREFIX_RE, "1-32 of [A-Za-z0-9_.:-], starting alphanumeric"
    )


def validate_schedule_id(schedule_id: object) -> str:
    """Return ``schedule_id`` if valid: 1-128 characters from ``A-Z a-z 0-9 _ . : @ + = ~ -``."""
    return _check("schedule id", schedule_id, _SCHEDULE_RE, "1-128 of [A-Za-z0-9_.:@+=~-]")


def validate_worker_id(worker_id: object) -> str:
    """Return ``worker_id`` if valid: 1-200 characters from ``A-Z a-z 0-9 _ . : @ + = ~ -``."""
    return _check("worker id", worker_id, _WORKER_RE, "1-200 of [A-Za-z0-9_.:@+=~-]")


def validate_finite(
    name: str, value: object, *, minimum: float | None = None, strict: bool = False
) -> float:
    """Return ``value`` as a float if it is a finite real number in range.

    Booleans are not numbers here: ``True``/``False`` are refused, although
    Python counts them as ints. ``-0.0`` is returned as ``0.0``: the two are
    the same number (they compare equal, and Redis orders equal scores by
    member), so a job enqueued with ``-0.0`` is stored and shown as ``0``.

    Args:
        name: the parameter name, for the error message.
        value: an ``int`` or ``float`` (``bool`` is rejected).
        minimum: lower bound, or ``None`` for none.
        strict: if true the bound is exclusive (``value > minimum``).

    Raises:
        InvalidPriorityError: not a real number, NaN, infinite, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPriorityError(f"{name} must be a real number, got {shown(value)}")
    try:
        result = float(value) + 0.0  # -0.0 -> 0.0
    except OverflowError:
        raise InvalidPriorityError(f"{name} is too large: {shown(value)}") from None
    if not math.isfinite(result):
        raise InvalidPriorityError(f"{name} must be finite, got {shown(value)}")
    if minimum is not None:
        if strict and not result > minimum:
            raise InvalidPriorityError(f"{name} must be > {minimum:g}, got {shown(value)}")
        if not strict and not result >= minimum:
            raise InvalidPriorityError(f"{name} must be >= {minimum:g}, got {shown(value)}")
    return result


#: Longest actor name kept in an audit event, characters.
ACTOR_MAX = 200


def default_actor() -> str:
    """Who runs an operator action when the caller does not say: the
    environment variable ``SCHEDULER_ACTOR`` (:data:`scheduler.defaults.ACTOR_ENV`)
    if set and not blank, else ``user@host`` of this process."""
    env = os.environ.get(ACTOR_ENV, "").strip()
    if env:
        return env
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (e.g. in a container)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def resolve_actor(actor: object = None) -> str:
    """The actor recorded in an operator action's audit event: ``actor`` if
    given, else :func:`default_actor`.

    Raises:
        ValidationError: ``actor`` is not a string, is blank, is longer than
            :data:`ACTOR_MAX` characters or holds a control character.
    """
    if actor is None:
        actor = default_actor()
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError(f"actor must be a non-empty string, got {shown(actor)}")
    if len(actor) > ACTOR_MAX or any(ord(c) < 32 or ord(c) == 127 for c in actor):
        raise ValidationError(
            f"actor must be at most {ACTOR_MAX} printable characters, got {shown(actor)}"
        )
    return actor
