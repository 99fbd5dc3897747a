-- fail.lua -- record a failed attempt of many leased jobs in one call.
--
-- For each job whose lease the caller still holds: if attempts remain and a
-- retry delay is given, the job goes to the delayed set (state failed) with
-- ETA = server time + delay and a new sequence number (it queues behind jobs
-- of equal priority); otherwise it goes dead, keeping the error. A stale
-- token is refused. Idempotent: repeating an applied call reports 3.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, leased, delayed, dead, meta (seq), wake, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, number of jobs (integer >= 0)
-- then N groups of 4: job id, lease token, error record (JSON text),
--   retry delay in ms (integer >= 0), or -1 = do not retry (dead now)
-- Returns: an array of N integers: 1 = will retry, 2 = dead, 3 = already
--   applied by an earlier run of this call, 0 = stale lease, -1 = job gone.
-- Errors: "ERR scheduler: bad argument count".

--@include lib/util.lua
--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
if not n or #ARGV ~= 2 + 4 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local out = {}
local retried, finished = 0, 0
for i = 0, n - 1 do
  local b = 3 + 4 * i
  local id, token, err, delay = ARGV[b], ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3])
  local rec = redis.call('HGET', K_JOBS, id)
  local f = rec and rec_decode(rec)
  if not f then
    out[i + 1] = -1
  elseif f[F_TK] ~= token then
    out[i + 1] = 0
  elseif f[F_ST] == 'F' or f[F_ST] == 'X' then
    out[i + 1] = 3
  elseif f[F_ST] ~= 'L' then
    out[i + 1] = 0
  else
    redis.call('ZREM', K_LEASED, id)
    finished = finished + 1
    local ma = rec_options(f)
    if delay >= 0 and tonumber(f[F_AT]) < ma then
      local eta = now + delay
      f[F_ST] = 'F'
      f[F_SEQ] = format_seq(next_seq())
      f[F_RDY] = int(eta)
      f[F_OUT] = err
      redis.call('ZADD', K_DELAYED, eta, rec_member(f, id))
      redis.call('HSET', K_JOBS, id, rec_encode(f))
      emit('retried', id, f[F_AT])
      retried = retried + 1
      out[i + 1] = 1
    else
      to_dead(f, id, now, err)
      out[i + 1] = 2
    end
  end
end
count('failed', finished)
count('retried', retried)
bump_rate(now, finished)
if retried > 0 then wake() end
return out
