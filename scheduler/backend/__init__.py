"""The storage layer: the only package that knows keys, records, scripts and
connections (see ``docs/design.md``, "Map of the code").

:class:`Backend` is its face; the modules beside it are its parts:
``keys`` (every key name), ``record`` (the job record layout),
``schedule_record`` (the stored schedule layout), ``codes`` (named reply
codes), ``scripts`` and ``cron_scripts`` (one typed wrapper per Lua
script), ``caller`` (the lean script call path), ``lualoader`` (includes and
pruning), ``connection`` (client construction), ``topology`` (Redis
Cluster and Sentinel URLs and clients), ``slot_waits`` (a cluster worker's
one wait per slot), ``subscription`` (pub/sub
waits), ``waiting`` (the idle worker's BLPOP with a lease behind it),
``replies`` (reply decoding), and the read/write mixins of :class:`Backend`:
``schedules``, ``queue_reads``, ``events``, ``registry`` and ``workers``
(the worker registry), ``waiting.WakeSignals``.
"""

from scheduler.backend.core import Backend

__all__ = ["Backend"]
