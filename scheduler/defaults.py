"""Every default of the scheduler, once, with its unit.

The app, the worker, the cron runner, the storage layer and the CLI options
all read these names; nothing else spells a default value. Times at the API
are seconds (float); inside Redis they are milliseconds (see each name).
"""

from __future__ import annotations

from typing import Final

# -- connection and keys ------------------------------------------------------

#: Redis URL the CLI uses when neither ``--url`` nor ``$REDIS_URL`` is given.
REDIS_URL: Final = "redis://127.0.0.1:6379/0"

#: Key prefix: every key is ``<prefix>:...`` (see :mod:`scheduler.backend.keys`).
PREFIX: Final = "sched"

#: Socket timeout of ordinary (non-blocking) Redis calls, seconds.
SOCKET_TIMEOUT: Final = 10.0

#: Connect timeout of Redis connections, seconds.
CONNECT_TIMEOUT: Final = 5.0

#: Health check (PING before use) of idle pooled connections, seconds.
HEALTH_CHECK_INTERVAL: Final = 30

# -- the app: job defaults ----------------------------------------------------

#: Queue of tasks and jobs that do not name one.
QUEUE: Final = "default"

#: Leases a job may begin before it goes dead (attempts), >= 1.
#:
#: Ten attempts at the default backoff (below) keep retrying for 4 to 8.5
#: minutes (the jitter decides): retries come 0.5-1, 1-2, 2-4, 4-8, ... s
#: after each failure, so a 5-second outage of a database or an API costs
#: a job at most 4 attempts and leaves it 6 -- it does not go dead. Peers:
#: Sidekiq retries 25 times over about 21 days (``(count**4) + 15 + rand``
#: seconds), Dramatiq 20 times with exponential backoff from 15 s up to
#: 7 days, Celery's ``self.retry`` 3 times 180 s apart. Ours is shorter than
#: Sidekiq's and Dramatiq's on purpose: a job here usually has a caller
#: waiting for its result, and a job that cannot succeed within minutes goes
#: dead where an operator sees it (``scheduler job retry`` revives it). Tasks
#: that call a service with longer outages set ``max_attempts`` and
#: ``backoff`` (e.g. ``backoff=[5, 30, 120, 600]``).
MAX_ATTEMPTS: Final = 10

#: Lease duration (visibility timeout), seconds.
LEASE: Final = 60.0

#: Execution time limit of one attempt, seconds; None = no limit. No limit
#: by default, like Celery's ``time_limit`` and unlike RQ (180 s), arq
#: (300 s) or saq (10 s): a default limit would fail legitimate long jobs
#: on upgrade, cannot stop a thread-pool task anyway, and a record without
#: a timeout keeps the options field it always had. Set one per task (or
#: app-wide) for tasks that may hang; see ``docs/design.md``.
TIMEOUT: Final[float | None] = None

#: Largest accepted timeout, seconds (about 31 years; keeps the ms value an
#: exact integer on both sides).
MAX_TIMEOUT: Final = 1e9

#: How long a succeeded or cancelled record is kept, seconds.
RESULT_TTL: Final = 3600.0

#: How long a dead record is kept, seconds (None would keep it forever).
DEAD_TTL: Final = 7 * 86400.0

#: Largest encoded ``[args, kwargs]`` payload or result, bytes (1 MiB).
MAX_PAYLOAD_BYTES: Final = 1 << 20

#: Deepest nesting of lists/objects in a payload, a result or metadata
#: (levels; ``[[1]]`` is 2). Decoding and showing a value recurses once or a
#: few times per level (``json``, the CLI's rendering); Python's default
#: recursion limit is 1000, so 100 levels leave room for the callers' frames.
MAX_PAYLOAD_DEPTH: Final = 100

#: Longest duration the API accepts, seconds: 100 years (365.25-day years).
#: Applies to ``delay``, ``lease``, ``result_ttl``, ``dead_ttl``, backoff,
#: schedule ``every``/``jitter``/``misfire_grace``. Why: a stored time is
#: server now + duration in integer ms, which must stay exact in Lua's
#: doubles (2**53 ms is about 285,000 years) and convert back to a
#: ``datetime`` (year <= 9999) when a record is read.
MAX_DURATION: Final = 100 * 365.25 * 86400.0

#: Latest ``eta`` the API accepts: 9999-01-01T00:00:00Z in ms since the Unix
#: epoch (the last year ``datetime`` can hold, less a margin for time zones).
#: The earliest is the Unix epoch (0): an ``eta`` in the past runs now.
MAX_ETA_MS: Final = 253_370_764_800_000

#: Most attempts a job may be given (``max_attempts``): one million. Attempts
#: are counted in the record by Lua (exact to 2**53); a million retries at
#: the default backoff cap is almost ten years of retrying, so anything
#: larger is a mistake, not a policy.
MAX_ATTEMPTS_LIMIT: Final = 1_000_000

#: Approximate length cap of each queue's event stream (``XADD MAXLEN ~``);
#: 0 turns events off.
EVENTS_MAXLEN: Final = 10_000

#: Priority formula inputs ``priority = weight * time / resource``: weight
#: (>= 0), estimated run time (seconds, > 0), resource (capacity units, > 0).
WEIGHT: Final = 1.0
TIME: Final = 1.0
RESOURCE: Final = 1.0

#: Learned run times (``time="auto"``; :mod:`scheduler.learning`):
#: ``estimated_time = mean * (1 + ALPHA * cv)`` (cv = sd / mean), so the
#: default is the mean plus half a standard deviation; the estimate is used
#: once the task has MIN_SAMPLES successful runs (fewer give a standard
#: deviation that is mostly noise) -- until then the job's time is TIME.
ALPHA: Final = 0.5
MIN_SAMPLES: Final = 5

#: Bounded backfill (workers with a capacity, ``--backfill-wait``): a job
#: that fits the worker's capacity but not its free part lets smaller jobs
#: behind it be leased ("backfill") only until it has waited this long since
#: it became ready, seconds; then the worker takes nothing past it until it
#: fits. 0 = strict (never pass it). Bounded backfill is the default: strict
#: leaves capacity idle whenever the head job is big, while the bound keeps
#: the big job from starving (it waits at most this long plus the run time
#: of the jobs already running).
BACKFILL_WAIT: Final = 30.0

#: Most ready entries one lease call looks at when limits or a worker
#: capacity apply (jobs held back stay in place and are looked past).
LEASE_SCAN: Final = 200

#: Retry backoff ``min(maximum, base * factor**(attempt-1)) * (1 - jitter * U)``:
#: base delay and cap in seconds, growth factor, jitter fraction in [0, 1].
BACKOFF_BASE: Final = 1.0
BACKOFF_MAXIMUM: Final = 300.0
BACKOFF_FACTOR: Final = 2.0
BACKOFF_JITTER: Final = 0.5

#: Longest progress message kept (``set_progress``), characters; longer is cut.
PROGRESS_MESSAGE_CHARS: Final = 200

#: A queue's progress hash expires this long after its last write, seconds
#: (entries of finished jobs are also swept by each write; ``lua/progress.lua``).
PROGRESS_TTL: Final = 3600.0

#: Jobs per enqueue script call in bulk enqueue.
BULK_BATCH: Final = 500

# -- bounded work per script call ---------------------------------------------

#: Delayed jobs promoted per lease call.
PROMOTE_BATCH: Final = 200

#: Expired leases requeued per lease call.
REAP_BATCH: Final = 100

#: Expired finished/dead records deleted per set and call: by a lease call
#: that finds fewer jobs than asked (an idle worker; it calls again at once
#: while more are due), and by a complete call (at least twice its jobs).
#: 500 deletions take well under a millisecond of Redis time for small
#: records (about 5 ms for 100 KB results: freeing memory dominates); see
#: ``docs/design.md``, "Bounded growth".
EXPIRE_BATCH: Final = 500

#: Lifetime of a lease request's reply cache, milliseconds.
LEASE_CACHE_MS: Final = 60_000

# -- the worker ---------------------------------------------------------------

#: Jobs a worker runs at once.
CONCURRENCY: Final = 10

#: Executor kind: ``"thread"`` or ``"process"``.
POOL: Final = "thread"

#: Order in which a worker visits its queues: ``"strict"`` or ``"weighted"``.
QUEUE_ORDER: Final = "strict"

#: Seconds running jobs may finish on shutdown before their leases are released.
GRACE: Final = 30.0

#: Longest single idle block on Redis (BLPOP, pub/sub wait), seconds.
MAX_BLOCK: Final = 30.0

#: Longest a worker holds the start report of a job it started (seconds)
#: waiting for a finished job whose report it can travel with (one round
#: trip instead of two; docs/design.md, "An attempt counts an execution
#: that started").
START_REPORT_WAIT: Final = 0.001

#: Address the Prometheus metrics server binds when enabled: loopback only,
#: like the dashboard (the metrics name queues and tasks); give
#: ``--metrics-addr 0.0.0.0`` (or a specific address) to serve other hosts.
METRICS_ADDR: Final = "127.0.0.1"

#: Jobs deleted per ``purge`` script call (bounds one call's work in Redis).
PURGE_BATCH: Final = 500

#: Port of the standalone exporter, ``scheduler metrics`` (the worker's
#: ``--metrics-port`` has no default: it is off unless given).
METRICS_PORT: Final = 9464

#: Environment variable naming who runs operator actions (the audit events'
#: actor) when ``--actor`` / ``actor=`` is not given; without it the actor is
#: ``user@host`` of the process.
ACTOR_ENV: Final = "SCHEDULER_ACTOR"

# -- cron ---------------------------------------------------------------------

#: How late a firing may still run under the ``catch_up`` misfire policy, seconds.
MISFIRE_GRACE: Final = 60.0

#: Firings enqueued per schedule and cron_fire call.
CRON_BATCH: Final = 100

#: Due schedules read per queue and round (a cron process then fires a
#: randomly placed window of them, so that concurrent processes share them).
CRON_SCAN: Final = 1000

#: Most schedules in one cron_fire call.
CRON_CALL_SCHEDULES: Final = 100

#: Most jobs one cron_fire call creates (over all its schedules; a single
#: catch-up may exceed it up to CRON_BATCH).
CRON_CALL_JOBS: Final = 500

# -- the admin CLI --------------------------------------------------------------

#: Rows a listing shows by default.
LIST_LIMIT: Final = 50

# -- Redis Cluster and Sentinel ---------------------------------------------------

#: How long a script call keeps retrying while its server is changing (a
#: Sentinel failover: connection refused, READONLY, NOREPLICAS; a cluster slot
#: migration or failover: TRYAGAIN, CLUSTERDOWN), seconds.
TOPOLOGY_RETRY: Final = 30.0
