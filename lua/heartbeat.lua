-- heartbeat.lua -- extend the leases of many in-flight jobs in one call.
--
-- Each job's deadline becomes server time + its lease duration, provided the
-- caller still holds the lease (lib/transitions.lua lease_status: state
-- leased, same fencing token).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script reads
--   jobs and writes leased (and, for a damaged record, what
--   lib/quarantine.lua writes).
-- ARGV[1]  N, number of jobs (integer >= 0)
-- then N pairs: job id, lease token
-- Returns: an array of N integers: the new deadline (ms since the Unix
--   epoch, always > 1) if extended; else a lib/codes.lua HEARTBEAT_* code:
--   HEARTBEAT_REPORTED (this lease already reported the job -- succeeded,
--   failed (retry scheduled) or dead: not lost, nothing to extend),
--   HEARTBEAT_LOST (expired -- also when it expired into dead --, released,
--   leased by someone else, cancelled), HEARTBEAT_GONE (no such job).
--   A damaged record goes dead (lib/quarantine.lua) and answers HEARTBEAT_LOST.
-- Errors: "ERR scheduler: bad argument count".
-- Events: none (this script writes no events, not even for a damaged record).

--@include lib/batch.lua
--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/leaseargs.lua
--@include lib/quarantine.lua
--@include lib/transitions.lua
--@include lib/util.lua

local ids, tokens = lease_args(1)
if not ids then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local recs = hmget_many(K_JOBS, ids)
local out = {}
local held_at, held_ids, held_fs = {}, {}, {}
for i = 1, #ids do
  local f, damaged = checked_record(ids[i], recs[i], now)
  local status = f and lease_status(f, tokens[i])
  if damaged then
    out[i] = HEARTBEAT_LOST
  elseif not f then
    out[i] = HEARTBEAT_GONE
  elseif status == 'held' then
    held_at[#held_at + 1] = i
    held_ids[#held_ids + 1] = ids[i]
    held_fs[#held_fs + 1] = f
  elseif status == 'succeeded' or status == 'retrying' or status == 'dead' then
    out[i] = HEARTBEAT_REPORTED
  else
    out[i] = HEARTBEAT_LOST
  end
end
local deadlines = renew_leases(held_ids, held_fs, now)
for k, i in ipairs(held_at) do out[i] = deadlines[k] end
return out
