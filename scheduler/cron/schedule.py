"""The schedule definition: its invariants, fire helpers and encoding.

A :class:`Schedule` is everything needed to enqueue its jobs without the
declaring code: the rule (cron expression + timezone, or interval), bounds,
jitter, misfire policy, and a :class:`JobTemplate` holding the job exactly as
:meth:`scheduler.Scheduler.enqueue` would have encoded it (task name, payload
JSON, priority, record options). It is stored as canonical JSON in Redis, so
every cron process fires the same job whatever version of the code it runs;
the code's declarations only matter when they are upserted (a declaration
becomes a :class:`Schedule` in :mod:`scheduler.cron.declare`).

Times are integer ms since the Unix epoch.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import attrs

from scheduler.backend.cron_scripts import JobTemplate
from scheduler.cron.errors import InvalidScheduleError
from scheduler.cron.memo import MemoRule
from scheduler.cron.policy import (
    FirePlan,
    MisfirePolicy,
    jitter_offset,
    on_time_until,
    plan_firing,
)
from scheduler.cron.timing import (
    CronRule,
    IntervalRule,
    Rule,
    get_zone,
    next_fire,
)
from scheduler.serialization import encode_meta
from scheduler.validation import validate_job_id

__all__ = ["FORMAT_VERSION", "JobTemplate", "Schedule"]

#: Version of the stored definition JSON.
FORMAT_VERSION = 1
#: Shortest interval of an ``every=`` schedule, ms.
MIN_INTERVAL_MS = 1000
#: Prefix of the job ids of schedule firings: ``cron:<schedule id>:<fire ms>``.
JOB_ID_PREFIX = "cron:"


@attrs.frozen
class Schedule:
    """A validated cron or interval schedule (build with :func:`build_schedule`).

    Attributes:
        id: schedule id (validated), unique within its queue.
        queue: the queue its jobs go to; the schedule is stored there too.
        job: the job each firing enqueues.
        cron: cron expression (normalised), or None for an interval schedule.
        every_ms: interval in ms, or None for a cron schedule.
        tz: timezone name.
        start_ms, end_ms: bounds, ms since the epoch (inclusive), or None.
        jitter_ms: jitter bound, ms (0 = none).
        misfire: misfire policy.
        grace_ms: ``misfire_grace``, ms.
        paused: initial state when first stored (not part of the definition:
            updating a schedule never pauses or resumes it).
    """

    id: str
    queue: str
    job: JobTemplate
    cron: str | None = None
    every_ms: int | None = None
    tz: str = "UTC"
    start_ms: int | None = None
    end_ms: int | None = None
    jitter_ms: int = 0
    misfire: MisfirePolicy = MisfirePolicy.COALESCE
    grace_ms: int = 60_000
    paused: bool = attrs.field(default=False, eq=False)
    _rule: Rule = attrs.field(init=False, repr=False, eq=False)
    _encoded_job: tuple[bytes, ...] = attrs.field(init=False, repr=False, eq=False)
    _meta_pieces: tuple[str, str] | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        rule: Rule
        if (self.cron is None) == (self.every_ms is None):
            raise InvalidScheduleError("give exactly one of a cron expression and an interval")
        if self.cron is not None:
            rule = CronRule(self.cron, self.tz)
        else:
            assert self.every_ms is not None
            if self.every_ms < MIN_INTERVAL_MS:
                raise InvalidScheduleError(f"interval must be at least 1 s, got {self.every_ms} ms")
            get_zone(self.tz)
            rule = IntervalRule(self.every_ms, self.start_ms or 0)
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise InvalidScheduleError("end is before start")
        if self.cron is not None:  # croniter steps are worth remembering
            rule = MemoRule(rule)
        object.__setattr__(self, "_rule", rule)
        object.__setattr__(self, "_encoded_job", self.job.encode())
        pieces = None
        if not self.job.meta:  # {"schedule":ID,"fire_at":F,"misfire":P,"missed":M}
            head = encode_meta({"schedule": self.id, "fire_at": 0})[:-2]
            tail = encode_meta({"misfire": str(self.misfire), "missed": 0})[1:-2]
            pieces = (head, f",{tail}")
        object.__setattr__(self, "_meta_pieces", pieces)

    # -- timing -------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``"cron"`` or ``"interval"``."""
        return "cron" if self.cron is not None else "interval"

    @property
    def rule(self) -> Rule:
        """The fire-time rule."""
        return self._rule

    def describe(self) -> str:
        """Short human description, e.g. ``cron '*/5 * * * *' Europe/Paris``."""
        if self.cron is not None:
            return f"cron {self.cron!r} {self.tz}"
        assert self.every_ms is not None
        return f"every {timedelta(milliseconds=self.every_ms)}"

    def next_fire(self, after_ms: int) -> int | None:
        """The first fire time strictly after ``after_ms`` within the bounds (ms), or None."""
        return next_fire(self._rule, after_ms, self.start_ms, self.end_ms)

    def plan(self, stored_next_ms: int, now_ms: int, batch: int = 100) -> FirePlan | None:
        """The firing plan when the stored next fire time is ``stored_next_ms`` and the
        server clock reads ``now_ms`` (see :func:`scheduler.cron.policy.plan_firing`)."""
        return plan_firing(
            self._rule,
            self.misfire,
            self.grace_ms,
            stored_next_ms,
            now_ms,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            batch=batch,
        )

    def plan_ahead(self, stored_next_ms: int, batch: int = 100) -> tuple[FirePlan, int | None]:
        """The plan of the firing at ``stored_next_ms`` made ahead of it (as
        :meth:`plan` right at the fire time), and the server time (ms) until
        which it holds, None if always (:func:`scheduler.cron.policy.on_time_until`)."""
        plan = self.plan(stored_next_ms, stored_next_ms, batch)
        assert plan is not None  # due at its own fire time
        return plan, on_time_until(self.misfire, self.grace_ms, stored_next_ms, plan)

    # -- jobs ---------------------------------------------------------------

    @property
    def encoded_job(self) -> tuple[bytes, ...]:
        """The job template as ``cron_fire`` ARGV values, encoded once
        (:meth:`JobTemplate.encode`)."""
        return self._encoded_job

    def job_id(self, fire_ms: int) -> str:
        """The job id of the firing at ``fire_ms``: ``cron:<schedule id>:<fire ms>``."""
        return validate_job_id(f"{JOB_ID_PREFIX}{self.id}:{fire_ms}")

    def due_ms(self, fire_ms: int) -> int:
        """When the job of the firing at ``fire_ms`` becomes ready: fire time + jitter (ms)."""
        return fire_ms + jitter_offset(self.id, fire_ms, self.jitter_ms)

    def job_meta(self, fire_ms: int, missed: int) -> str:
        """The job's ``meta`` JSON: ``schedule``, ``fire_at`` (ms), ``misfire``
        (the policy) and ``missed`` (firings skipped or folded just before it),
        after the schedule's own ``meta`` keys (the schedule's keys win).

        Without own keys (the common case) the text is put together from
        pieces encoded once per schedule: the same JSON, without encoding a
        dict per firing."""
        if self._meta_pieces is not None:
            head, middle = self._meta_pieces
            return f"{head}{fire_ms}{middle}{missed}}}"
        meta: dict[str, Any] = dict(self.job.meta or {})
        meta.update(schedule=self.id, fire_at=fire_ms, misfire=str(self.misfire), missed=missed)
        return encode_meta(meta)

    # -- encoding -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The definition as a JSON-ready dict (everything but ``paused``)."""
        return {
            "v": FORMAT_VERSION,
            "id": self.id,
            "queue": self.queue,
            "cron": self.cron,
            "every_ms": self.every_ms,
            "tz": self.tz,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "jitter_ms": self.jitter_ms,
            "misfire": str(self.misfire),
            "grace_ms": self.grace_ms,
            "job": attrs.asdict(self.job),
        }

    def to_json(self) -> str:
        """Canonical JSON of the definition (sorted keys, compact)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def digest(self) -> str:
        """16 hex digits identifying the definition; equal definitions, equal digests."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str | bytes, *, paused: bool = False) -> Schedule:
        """Decode a stored definition.

        Raises:
            InvalidScheduleError: not a definition this version understands.
        """
        try:
            d = json.loads(text)
            if d.get("v") != FORMAT_VERSION:
                raise InvalidScheduleError(f"unsupported schedule format {d.get('v')!r}")
            return cls(
                id=d["id"],
                queue=d["queue"],
                job=JobTemplate(**d["job"]),
                cron=d["cron"],
                every_ms=d["every_ms"],
                tz=d["tz"],
                start_ms=d["start_ms"],
                end_ms=d["end_ms"],
                jitter_ms=d["jitter_ms"],
                misfire=MisfirePolicy.parse(d["misfire"]),
                grace_ms=d["grace_ms"],
                paused=paused,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, InvalidScheduleError):
                raise
            raise InvalidScheduleError(f"malformed schedule definition: {exc!r}") from None
