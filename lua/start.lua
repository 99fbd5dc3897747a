-- start.lua -- record that the worker began running leased jobs.
--
-- An attempt counts an execution that started: lease.lua leases a job
-- "not started" (F_STARTED_MS empty) and this script stamps the start time
-- on each lease the caller still holds (lib/transitions.lua lease_status:
-- state leased, same fencing token). An unstarted lease that expires gives
-- its attempt back (lib/maintenance.lua reap_expired). The worker reports
-- starts in the round trip that follows them: inside that round's complete
-- call when it has one (complete.lua, lib/starts.lua), else as this call
-- first in the round trip, so it costs no round trip of its own.
-- Idempotent: a repeat answers START_ALREADY_STARTED and keeps the first time.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script reads
--   and writes jobs (and, for a damaged record, what lib/quarantine.lua
--   writes).
-- ARGV[1]  N, number of jobs (integer >= 0)
-- then N pairs: job id, lease token
-- Returns: an array of N integers (lib/codes.lua START_*): START_STARTED,
--   START_ALREADY_STARTED, START_STALE (lease lost: expired, released,
--   cancelled, leased again; also when the record was damaged -- it goes
--   dead, lib/quarantine.lua, as in every other script), START_GONE (no
--   such job).
-- Errors: "ERR scheduler: bad argument count".
-- Events: none (this script writes no events, not even for a damaged record).

--@include lib/batch.lua
--@include lib/leaseargs.lua
--@include lib/quarantine.lua
--@include lib/starts.lua
--@include lib/util.lua

local ids, tokens = lease_args(1)
if not ids then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local out, recs, dirty = stamp_starts(ids, tokens, now, function(id, raw)
  return checked_record(id, raw, now)
end)
local hset = {}
for _, id in ipairs(dirty) do
  hset[#hset + 1] = id
  hset[#hset + 1] = rec_encode(recs[id])
end
call_many({'HSET', K_JOBS}, hset)
return out
