"""The job record: how one job is stored in its queue's ``jobs`` hash.

A record is one string of 18 fields joined by ``"\\x1f"`` (ASCII unit
separator). One hash entry per job -- rather than one Redis key per job --
keeps every key a script touches fixed and declared in ``KEYS``
(``docs/design.md``, "Redis Cluster"), and costs less memory than a key per job.

The layout is defined once, by :data:`FIELDS`; the index constants
(``I_STATE``, ...) are derived from it, as is the worker's hot-path decoder
:func:`split_leased`. The Lua side (``lua/lib/record.lua``) names the same
fields ``F_<NAME>`` (1-based: ``F_STATE`` is 2) and builds new records in
the same order (``lua/lib/create.lua``); ``tests/test_record_layout.py``
parses the Lua and checks both sides agree.

Validation: :func:`parse_record` and the Lua decoder (``rec_decode`` in
``lua/lib/record.lua``) accept exactly the same records -- one grammar,
checked in the same order, failures worded the same
(``tests/test_record_parity.py`` compares them on random records on a real
server). A record must be valid UTF-8 with 18 fields; version ``"3"`` (or
``"2"``, written before version 3: the same grammar, never empty options); a
known state letter; ``attempts`` and ``enqueued_ms`` integers of 1-16 ASCII
digits below 2**53 (``token``, ``ready_ms``, ``finished_ms``, ``started_ms`` the
same or empty); ``seq``
9 base-62 digits; ``priority`` (and each of the 3 or 8 ``inputs``) a finite
``-?d+(.d+)?([eE][-+]?d+)?``; ``options`` empty (:data:`DEFAULT_OPTIONS`)
or four such integers (``dead_ttl`` may be negative) with ``max_attempts >=
1`` and ``lease_ms >= 1``, and optionally a fifth, ``timeout_ms >= 1``;
``aged`` such a number or empty. Python's ``int``/``float`` alone would
accept more (``"1_0"``, non-ASCII digits, ``"inf"``), which a script would
then fail on half-way. A record that fails is *damaged*: Python raises
:class:`~scheduler.errors.DamagedRecordError`; the scripts move it to dead
with the same reason (``lua/lib/quarantine.lua``).

=====  ============  ======================================================
index  field         meaning
=====  ============  ======================================================
0      version       record format version, ``"3"`` (``"2"``: options never
                     empty; ``"1"``: before ``aged``)
1      state         one letter, see :class:`JobState`
2      attempts      executions started, plus 1 while a lease that has not
                     started yet is held (int; see ``started_ms``)
3      seq           9 base-62 digits (0-9A-Za-z); ready/delayed member ``seq:id``
4      token         lease token (fencing token, decimal) of the current or last
                     lease, or ``""``: cleared when a lease ends without its
                     holder (expiry, cancel, operator retry), so the late
                     holder is refused
5      worker        worker holding (or that reported) the lease, or ``""``:
                     cleared on release, expiry, cancel and operator retry
6      enqueued_ms   server time of enqueue, ms since the Unix epoch
7      ready_ms      when the job became (or becomes) ready: ETA, ms; ``""`` =
                     the enqueue time (a job ready at once)
8      finished_ms   server time it reached a final state, ms, or ``""``
9      started_ms    server time the worker reported the current (or last)
                     lease's execution started, ms; ``""`` while a lease has
                     not started (cleared by every lease): a lease that
                     expires unstarted gives its attempt back
10     priority      float as decimal text (``repr``)
11     inputs        ``"weight,time,resource"``, or ``""`` if explicit, or
                     ``"weight,time,resource,alpha,min_samples,runs,mean_s,cv"``
                     for a learned time (:class:`LearnedTime`)
12     options       ``"max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms[,timeout_ms]"``;
                     ``timeout_ms`` (execution time limit, ms) is left out when
                     the job has none (both sides read both forms); ``""`` =
                     :data:`DEFAULT_OPTIONS` (most jobs: 25 bytes saved each)
13     task          task name
14     outcome       result JSON (succeeded) or error record JSON, or ``""``
15     meta          JSON object of caller metadata (e.g. cron origin), or ``""``
16     aged          the queue's aging clock at the job's ready time, priority
                     units (``%.17g`` text), ``""`` = 0; the ready score is
                     ``aged - priority`` (:mod:`scheduler.priority`)
17     payload       ``[args, kwargs]`` JSON (the rest of the string)
=====  ============  ======================================================
"""

from __future__ import annotations

import enum
import math
import operator
import re

import attrs

from scheduler.errors import DamagedRecordError

__all__ = [
    "DEFAULT_OPTIONS",
    "FIELDS",
    "FIELD_COUNT",
    "LEASED_FIELDS",
    "SEP",
    "VERSION",
    "VERSIONS",
    "JobOptions",
    "JobRecord",
    "JobState",
    "LearnedTime",
    "parse_record",
    "record_damage",
    "resource_of",
    "split_leased",
]

SEP = "\x1f"
#: The record format version this code writes (field ``version``).
VERSION = "3"
#: The versions this code reads: version 2 is version 3 without empty options.
VERSIONS = ("2", "3")
#: What an empty ``options`` field stands for: the library's default job
#: options (max_attempts 10, lease 60 s, result ttl 1 h, dead ttl 7 days, no
#: timeout). A format constant (``REC_DEFAULT_OPTIONS`` in
#: ``lua/lib/record.lua``): it does not follow later changes of the defaults.
DEFAULT_OPTIONS = "10,60000,3600000,604800000"

#: The record's fields, in order: the single definition of the layout.
FIELDS: tuple[str, ...] = (
    "version",
    "state",
    "attempts",
    "seq",
    "token",
    "worker",
    "enqueued_ms",
    "ready_ms",
    "finished_ms",
    "started_ms",
    "priority",
    "inputs",
    "options",
    "task",
    "outcome",
    "meta",
    "aged",
    "payload",
)
FIELD_COUNT = len(FIELDS)

# 0-based index of each field (Lua's F_<NAME> is this + 1).
I_VERSION = FIELDS.index("version")
I_STATE = FIELDS.index("state")
I_ATTEMPTS = FIELDS.index("attempts")
I_SEQ = FIELDS.index("seq")
I_TOKEN = FIELDS.index("token")
I_WORKER = FIELDS.index("worker")
I_ENQUEUED_MS = FIELDS.index("enqueued_ms")
I_READY_MS = FIELDS.index("ready_ms")
I_FINISHED_MS = FIELDS.index("finished_ms")
I_STARTED_MS = FIELDS.index("started_ms")
I_PRIORITY = FIELDS.index("priority")
I_INPUTS = FIELDS.index("inputs")
I_OPTIONS = FIELDS.index("options")
I_TASK = FIELDS.index("task")
I_OUTCOME = FIELDS.index("outcome")
I_META = FIELDS.index("meta")
I_AGED = FIELDS.index("aged")
I_PAYLOAD = FIELDS.index("payload")

#: The fields :func:`split_leased` returns, in this order.
LEASED_FIELDS: tuple[str, ...] = (
    "token",
    "task",
    "payload",
    "attempts",
    "options",
    "priority",
    "enqueued_ms",
    "aged",
    "seq",
    "inputs",
    "meta",
    "ready_ms",
)
_pick_leased = operator.itemgetter(*(FIELDS.index(name) for name in LEASED_FIELDS))


def resource_of(inputs: str) -> float:
    """The capacity units a job takes, from its ``inputs`` field text: the
    resource input, or 1 (:data:`scheduler.defaults.RESOURCE`) for an
    explicit priority (``rec_resource`` in ``lua/lib/limits.lua``).

    Raises:
        ValueError: not valid inputs text.
    """
    return float(inputs.split(",")[2]) if inputs else 1.0


def split_leased(text: str) -> tuple[str, ...]:
    """The worker's hot-path decoder: the :data:`LEASED_FIELDS` of a record
    just leased, as text (one split and one ``itemgetter``; no parsing of
    numbers, no objects).

    Raises:
        ValueError: the text is not a record of version :data:`VERSION`.
    """
    f = text.split(SEP, FIELD_COUNT - 1)
    if len(f) != FIELD_COUNT or f[I_VERSION] not in VERSIONS:
        raise ValueError("unrecognised job record format")
    fields: tuple[str, ...] = _pick_leased(f)
    return fields


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
        timeout_ms: execution time limit of one attempt, ms (>= 1), or None
            for no limit (see :class:`scheduler.errors.JobTimeoutError`).
    """

    max_attempts: int
    lease_ms: int
    result_ttl_ms: int
    dead_ttl_ms: int
    timeout_ms: int | None = None

    def encode(self) -> str:
        """The record's options field (4 numbers, or 5 with a timeout)."""
        text = f"{self.max_attempts},{self.lease_ms},{self.result_ttl_ms},{self.dead_ttl_ms}"
        return text if self.timeout_ms is None else f"{text},{self.timeout_ms}"

    @classmethod
    def decode(cls, text: str) -> JobOptions:
        """Parse an options field (the record grammar, see the module
        docstring; ``""`` is :data:`DEFAULT_OPTIONS`).

        Raises:
            ValueError: malformed.
        """
        if not text:
            text = DEFAULT_OPTIONS
        if not _is_options(text):
            raise ValueError(f"malformed job options {text!r}")
        parts = [int(part) for part in text.split(",")]
        # 4 numbers: no timeout (as written before timeouts existed).
        a, b, c, d = parts[:4]
        return cls(a, b, c, d, parts[4] if len(parts) == 5 else None)


@attrs.frozen
class JobRecord:
    """A decoded job record (all times in ms since the Unix epoch, server clock).

    ``aged`` is the queue's aging clock at the job's ready time (priority
    units; 0 on a queue that never aged): the ready score is
    ``aged - priority`` (:func:`scheduler.priority.ready_score`).
    """

    job_id: str
    state: JobState
    attempts: int
    seq: str
    token: str
    worker: str
    enqueued_ms: int
    ready_ms: int
    finished_ms: int | None
    started_ms: int | None
    priority: float
    inputs: tuple[float, float, float] | None
    options: JobOptions
    task: str
    outcome: str
    meta: str
    payload: str
    aged: float = 0.0
    estimate: LearnedTime | None = None


@attrs.frozen
class LearnedTime:
    """How a job's learned ("auto") run time was made at enqueue
    (``lua/lib/stats.lua``; :mod:`scheduler.learning`): ``inputs[1]`` is
    the time used -- ``mean_s * (1 + alpha * cv)`` when ``runs >=
    min_samples``, else the fallback time.

    Attributes:
        alpha: inflation per unit of coefficient of variation.
        min_samples: runs needed before the estimate is used.
        runs: successful runs of the task measured at enqueue time.
        mean_s: their mean duration, seconds.
        cv: their coefficient of variation (sd / mean).
    """

    alpha: float
    min_samples: int
    runs: int
    mean_s: float
    cv: float

    @property
    def learned(self) -> bool:
        """True if the estimate was used (enough runs), False if the fallback was."""
        return self.runs >= self.min_samples


_INT = "[0-9]{1,16}"
_INT_RE = re.compile(_INT)
#: Integers must be below 2**53, the largest a Lua number holds exactly.
_INT_LIMIT = 2**53


def _is_int(text: str) -> bool:
    return _INT_RE.fullmatch(text) is not None and int(text) < _INT_LIMIT


def _is_opt_int(text: str) -> bool:
    return text == "" or _is_int(text)


_NUM_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_SEQ_RE = re.compile("[0-9A-Za-z]{9}")
_OPTIONS_RE = re.compile(f"({_INT}),({_INT}),({_INT}),(-?{_INT})(?:,({_INT}))?")


def _is_num(text: str) -> bool:
    return _NUM_RE.fullmatch(text) is not None and math.isfinite(float(text))


def _is_opt_num(text: str) -> bool:
    return text == "" or _is_num(text)


def _is_inputs(text: str) -> bool:
    parts = text.split(",")
    return text == "" or (len(parts) in (3, 8) and all(_is_num(p) for p in parts))


def _is_options(text: str) -> bool:
    if not text:
        return True
    match = _OPTIONS_RE.fullmatch(text)
    return (
        match is not None
        and all(_is_int(match[i].lstrip("-")) for i in range(1, 5))
        and int(match[1]) >= 1
        and int(match[2]) >= 1
        and (match[5] is None or (_is_int(match[5]) and int(match[5]) >= 1))
    )


#: The checked fields in checking order (the same as ``checks`` of ``rec_full`` in
#: ``lua/lib/record.lua``): index, check, what the field must be.
_CHECKS: tuple[tuple[int, object, str], ...] = (
    (I_STATE, lambda v: v in _CODE_TO_STATE, "a known state letter"),
    (I_ATTEMPTS, _is_int, "an integer"),
    (I_SEQ, _SEQ_RE.fullmatch, "9 base-62 digits"),
    (I_TOKEN, _is_opt_int, "an integer or empty"),
    (I_ENQUEUED_MS, _is_int, "an integer"),
    (I_READY_MS, _is_opt_int, "an integer or empty"),
    (I_FINISHED_MS, _is_opt_int, "an integer or empty"),
    (I_STARTED_MS, _is_opt_int, "an integer or empty"),
    (I_PRIORITY, _is_num, "a finite number"),
    (I_INPUTS, _is_inputs, "3 or 8 finite numbers, or empty"),
    (
        I_OPTIONS,
        _is_options,
        "four integers (max_attempts >= 1, lease_ms >= 1), optionally a fifth (timeout_ms >= 1),"
        " or empty",
    ),
    (I_AGED, _is_opt_num, "a finite number or empty"),
)


def record_damage(text: str | bytes) -> str | None:
    """Why ``text`` is not a valid record (the first check that fails, worded
    as the Lua decoder words it), or None if it is valid.

    Pure; no errors raised. See the module docstring for the grammar.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return "record is not valid UTF-8"
    elif not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return "record is not valid UTF-8"
    f = text.split(SEP, FIELD_COUNT - 1)
    if len(f) != FIELD_COUNT:
        return f"record has {len(f)} fields, expected {FIELD_COUNT}"
    if f[I_VERSION] not in VERSIONS:
        return f"version is not {' or '.join(VERSIONS)}"
    for index, check, what in _CHECKS:
        if not check(f[index]):  # type: ignore[operator]
            return f"{FIELDS[index]} is not {what}"
    return None


def parse_record(job_id: str, text: str | bytes) -> JobRecord:
    """Decode a record read from the ``jobs`` hash (bytes are decoded as
    strict UTF-8).

    Raises:
        DamagedRecordError: the record fails the record grammar (a
            :class:`ValueError`); ``reason`` says which check.
    """
    reason = record_damage(text)
    if reason is not None:
        raise DamagedRecordError(job_id, reason)
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    f = text.split(SEP, FIELD_COUNT - 1)
    inputs = None
    estimate = None
    if f[I_INPUTS]:
        parts = [float(x) for x in f[I_INPUTS].split(",")]
        inputs = (parts[0], parts[1], parts[2])
        if len(parts) == 8:
            estimate = LearnedTime(parts[3], int(parts[4]), int(parts[5]), parts[6], parts[7])
    enqueued_ms = int(f[I_ENQUEUED_MS])
    return JobRecord(
        job_id=job_id,
        state=_CODE_TO_STATE[f[I_STATE]],
        attempts=int(f[I_ATTEMPTS]),
        seq=f[I_SEQ],
        token=f[I_TOKEN],
        worker=f[I_WORKER],
        enqueued_ms=enqueued_ms,
        ready_ms=int(f[I_READY_MS]) if f[I_READY_MS] else enqueued_ms,
        finished_ms=int(f[I_FINISHED_MS]) if f[I_FINISHED_MS] else None,
        started_ms=int(f[I_STARTED_MS]) if f[I_STARTED_MS] else None,
        priority=float(f[I_PRIORITY]),
        inputs=inputs,
        options=JobOptions.decode(f[I_OPTIONS]),
        estimate=estimate,
        task=f[I_TASK],
        outcome=f[I_OUTCOME],
        meta=f[I_META],
        payload=f[I_PAYLOAD],
        aged=float(f[I_AGED]) if f[I_AGED] else 0.0,
    )
