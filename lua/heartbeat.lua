-- heartbeat.lua -- extend the leases of many in-flight jobs in one call.
--
-- Each job's deadline becomes server time + its lease duration, provided the
-- caller still holds the lease (state leased, same fencing token).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script reads
--   jobs and writes leased.
-- ARGV[1]  N, number of jobs (integer >= 0)
-- then N pairs: job id, lease token
-- Returns: an array of N integers: the new deadline (ms since the Unix
--   epoch) if extended; 1 if this lease already reported the job (succeeded,
--   failed or dead with this token: not lost, nothing to extend); 0 if the
--   lease is stale (expired and requeued, leased by someone else, cancelled);
--   -1 if the job is gone.
-- Errors: "ERR scheduler: bad argument count".

--@include lib/util.lua
--@include lib/keys.lua
--@include lib/record.lua

local n = tonumber(ARGV[1])
if not n or #ARGV ~= 1 + 2 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[2 + 2 * i] end
local recs = hmget_many(K_JOBS, ids)
local out = {}
local zadd = {}
for i = 1, n do
  local token = ARGV[3 + 2 * (i - 1)]
  local f = recs[i] and rec_decode(recs[i])
  if not f then
    out[i] = -1
  elseif f[F_TK] == token and f[F_ST] == 'L' then
    local _, lease_ms = rec_options(f)
    local deadline = now + lease_ms
    zadd[#zadd + 1] = deadline
    zadd[#zadd + 1] = ids[i]
    out[i] = deadline
  elseif f[F_TK] == token and (f[F_ST] == 'S' or f[F_ST] == 'F' or f[F_ST] == 'X') then
    out[i] = 1
  else
    out[i] = 0
  end
end
call_many({'ZADD', K_LEASED, 'XX'}, zadd)
return out
