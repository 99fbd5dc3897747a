"""The scheduler's Lua scripts (mapped to the ``scheduler.lua`` package).

This directory stays at the top level of the repository; ``pyproject.toml``
maps it to ``scheduler.lua`` so ``importlib.resources`` finds the scripts
both from an editable install and from a built wheel. See
``scheduler/backend/lualoader.py`` for the loader and ``lua/lib/`` for the
shared code, one concern per library, that scripts (and libraries) include
with ``--@include lib/<file>.lua``:

- ``util.lua``: ``int``, ``now_ms``.
- ``keys.lua``: the standard queue KEYS (``K_JOBS`` ...), the finished channel.
- ``codes.lua``: named reply codes (``scheduler/backend/codes.py``).
- ``record.lua``: the job record codec (``F_<FIELD>``), members, ready score.
- ``queue.lua``: queue settings and sequence numbers.
- ``batch.lua``: one ``redis.call`` for many values.
- ``signals.lua``: events (``events_init``), pub/sub, wake markers, counters.
- ``transitions.lua``: the one lease check (``lease_status``) and the shared
  state transitions.
- ``expiry.lua``: deleting finished records past their retention.
- ``maintenance.lua``: promotion of due jobs, reaping of expired leases.
- ``create.lua``: new job records.
- ``schedule.lua``: the schedule record codec (``S_<FIELD>``).
"""
