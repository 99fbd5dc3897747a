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
--   and writes jobs only.
-- ARGV[1]  N, number of jobs (integer >= 0)
-- then N pairs: job id, lease token
-- Returns: an array of N integers (lib/codes.lua START_*): START_STARTED,
--   START_ALREADY_STARTED, START_STALE (lease lost: expired, released,
--   cancelled, leased again), START_GONE (no such job).
-- Errors: "ERR scheduler: bad argument count".
-- Events: none.

--@include lib/batch.lua
--@include lib/starts.lua

local n = tonumber(ARGV[1])
if not n or #ARGV ~= 1 + 2 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local ids, tokens = {}, {}
for i = 0, n - 1 do
  ids[i + 1] = ARGV[2 + 2 * i]
  tokens[i + 1] = ARGV[3 + 2 * i]
end
local out, recs, dirty = stamp_starts(ids, tokens, now_ms(), function(_, raw)
  return raw and rec_decode(raw)
end)
local hset = {}
for _, id in ipairs(dirty) do
  hset[#hset + 1] = id
  hset[#hset + 1] = rec_encode(recs[id])
end
call_many({'HSET', K_JOBS}, hset)
return out
