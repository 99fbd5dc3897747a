-- start.lua -- record that the worker began running leased jobs.
--
-- An attempt counts an execution that started: lease.lua leases a job
-- "not started" (F_STARTED_MS empty) and this script stamps the start time
-- on each lease the caller still holds (lib/transitions.lua lease_status:
-- state leased, same fencing token). An unstarted lease that expires gives
-- its attempt back (lib/maintenance.lua reap_expired). The worker sends this
-- call first in the round trip that follows the start (with that round's
-- complete/fail/lease calls), so it costs no round trip of its own.
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
--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/transitions.lua
--@include lib/util.lua

local n = tonumber(ARGV[1])
if not n or #ARGV ~= 1 + 2 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[2 + 2 * i] end
local recs = hmget_many(K_JOBS, ids)
local out = {}
local hset = {}
for i = 1, n do
  local f = recs[i] and rec_decode(recs[i])
  if not f then
    out[i] = START_GONE
  elseif lease_status(f, ARGV[3 + 2 * (i - 1)]) ~= 'held' then
    out[i] = START_STALE
  elseif f[F_STARTED_MS] ~= '' then
    out[i] = START_ALREADY_STARTED
  else
    f[F_STARTED_MS] = int(now)
    hset[#hset + 1] = ids[i]
    hset[#hset + 1] = rec_encode(f)
    out[i] = START_STARTED
  end
end
call_many({'HSET', K_JOBS}, hset)
return out
