"""The job record: how one job is stored in its queue's ``jobs`` hash.

A record is one string of 16 fields joined by ``"\\x1f"`` (ASCII unit
separator). The Lua side (``lua/lib/record.lua``) reads and writes the same
layout. One hash entry per job -- rather than one Redis key per job -- keeps
every key a script touches fixed and declared in ``KEYS`` (docs/design.md,
"Redis Cluster"), and costs less memory than a key per job.

=====  ============  ======================================================
index  field         meaning
=====  ============  ======================================================
0      version       record format version, ``"1"``
1      state         one letter, see :class:`JobState`
2      attempts      number of leases begun (int)
3      seq           9 base-62 digits (0-9A-Za-z); ready/delayed member ``seq:id``
4      token         last lease token (fencing token, decimal), or ``""``
5      worker        worker holding (or that last held) the lease, or ``""``
6      enqueued_ms   server time of enqueue, ms since the Unix epoch
7      ready_ms      when the job became (or becomes) ready: ETA, ms; ``""`` =
                     the enqueue time (a job ready at once)
8      finished_ms   server time it reached a final state, ms, or ``""``
9      priority      float as decimal text (``repr``)
10     inputs        ``"weight,time,resource"``, or ``""`` if explicit
11     options       ``"max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms"``
12     task          task name
13     outcome       result JSON (succeeded) or error record JSON, or ``""``
14     meta          JSON object of caller metadata (e.g. cron origin), or ``""``
15     payload       ``[args, kwargs]`` JSON (the rest of the string)
=====  ============  ======================================================
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["FIELD_COUNT", "SEP", "JobOptions", "JobRecord", "JobState", "parse_record"]

SEP = "\x1f"
FIELD_COUNT = 16


class JobState(enum.StrEnum):
    """Lifecycle state of a job.

    ``ready`` (waiting in priority order), ``delayed`` (waiting for its ETA),
    ``leased`` (in flight on a worker), ``failed`` (an attempt failed; waiting
    for its retry ETA), and the final states ``succeeded``, ``dead``
    (dead-letter: out of attempts or not runnable; kept with its reason) and
    ``cancelled``.
    """

    READY = "ready"
    DELAYED = "delayed"
    LEASED = "leased"
    FAILED = "failed"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for ``succeeded``, ``dead`` and ``cancelled``."""
        return self in (JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED)


_CODE_TO_STATE = {
    "R": JobState.READY,
    "D": JobState.DELAYED,
    "L": JobState.LEASED,
    "F": JobState.FAILED,
    "S": JobState.SUCCEEDED,
    "X": JobState.DEAD,
    "C": JobState.CANCELLED,
}


@attrs.frozen
class JobOptions:
    """Per-job settings the Lua scripts need (stored in the record).

    Attributes:
        max_attempts: leases allowed before the job goes dead (>= 1).
        lease_ms: lease duration (visibility timeout), milliseconds (>= 1).
        result_ttl_ms: how long a succeeded/cancelled record is kept, ms (>= 0).
        dead_ttl_ms: how long a dead record is kept, ms; -1 keeps it forever.
    """

    max_attempts: int
    lease_ms: int
    result_ttl_ms: int
    dead_ttl_ms: int

    def encode(self) -> str:
        """The record's options field."""
        return f"{self.max_attempts},{self.lease_ms},{self.result_ttl_ms},{self.dead_ttl_ms}"

    @classmethod
    def decode(cls, text: str) -> JobOptions:
        """Parse an options field; raises ``ValueError`` if malformed."""
        a, b, c, d = (int(part) for part in text.split(","))
        return cls(a, b, c, d)


@attrs.frozen
class JobRecord:
    """A decoded job record (all times in ms since the Unix epoch, server clock)."""

    job_id: str
    state: JobState
    attempts: int
    seq: str
    token: str
    worker: str
    enqueued_ms: int
    ready_ms: int
    finished_ms: int | None
    priority: float
    inputs: tuple[float, float, float] | None
    options: JobOptions
    task: str
    outcome: str
    meta: str
    payload: str


def parse_record(job_id: str, text: str | bytes) -> JobRecord:
    """Decode a record read from the ``jobs`` hash.

    Raises:
        ValueError: the text is not a version-1 record.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    f = text.split(SEP, FIELD_COUNT - 1)
    if len(f) != FIELD_COUNT or f[0] != "1":
        raise ValueError(f"job {job_id}: unrecognised record format")
    inputs = None
    if f[10]:
        w, t, r = (float(x) for x in f[10].split(","))
        inputs = (w, t, r)
    return JobRecord(
        job_id=job_id,
        state=_CODE_TO_STATE[f[1]],
        attempts=int(f[2]),
        seq=f[3],
        token=f[4],
        worker=f[5],
        enqueued_ms=int(f[6]),
        ready_ms=int(f[7]) if f[7] else int(f[6]),
        finished_ms=int(f[8]) if f[8] else None,
        priority=float(f[9]),
        inputs=inputs,
        options=JobOptions.decode(f[11]),
        task=f[12],
        outcome=f[13],
        meta=f[14],
        payload=f[15],
    )
