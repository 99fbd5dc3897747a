-- fail.lua -- record a failed attempt of many leased jobs in one call.
--
-- For each job whose lease the caller still holds: if attempts remain and a
-- retry delay is given, the job goes to the delayed set (state failed) with
-- ETA = server time + delay and a new sequence number (it queues behind jobs
-- of equal priority); otherwise it goes dead, keeping the error. A stale
-- token is refused. Idempotent: repeating an applied call reports what it
-- applied -- FAIL_ALREADY_RETRY_SCHEDULED (also once the retry was promoted
-- to ready) or FAIL_ALREADY_DEAD.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, leased, delayed, dead, meta (seq), wake, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, number of jobs (integer >= 0)
-- then N groups of 4: job id, lease token, error record (JSON text),
--   retry delay in ms (integer >= 0), or -1 = do not retry (dead now)
-- Returns: an array of N integers (lib/codes.lua FAIL_*):
--   FAIL_RETRY_SCHEDULED, FAIL_DEAD, FAIL_ALREADY_RETRY_SCHEDULED and
--   FAIL_ALREADY_DEAD (applied by an earlier run of this call),
--   FAIL_STALE (lease lost: refused; also when the record was damaged --
--   it goes dead, lib/quarantine.lua), FAIL_GONE (no such job).
-- Errors: "ERR scheduler: bad argument count".
-- Events: retried (detail: the attempt), dead (detail "damaged" for a
--   damaged record).

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
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
  local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id), now)
  local status = f and lease_status(f, token)
  if damaged then
    out[i + 1] = FAIL_STALE
  elseif not f then
    out[i + 1] = FAIL_GONE
  elseif status == 'retrying' then
    out[i + 1] = FAIL_ALREADY_RETRY_SCHEDULED
  elseif status == 'dead' then
    out[i + 1] = FAIL_ALREADY_DEAD
  elseif status ~= 'held' then
    out[i + 1] = FAIL_STALE
  else
    redis.call('ZREM', K_LEASED, id)
    finished = finished + 1
    local ma = rec_options(f)
    if delay >= 0 and tonumber(f[F_ATTEMPTS]) < ma then
      local eta = now + delay
      f[F_STATE] = 'F'
      f[F_SEQ] = format_seq(next_seq())
      f[F_READY_MS] = int(eta)
      f[F_OUTCOME] = err
      redis.call('ZADD', K_DELAYED, eta, rec_member(f, id))
      redis.call('HSET', K_JOBS, id, rec_encode(f))
      emit('retried', id, f[F_ATTEMPTS])
      retried = retried + 1
      out[i + 1] = FAIL_RETRY_SCHEDULED
    else
      to_dead(f, id, now, err)
      out[i + 1] = FAIL_DEAD
    end
  end
end
count('failed', finished)
count('retried', retried)
bump_rate(now, finished, finished)
if retried > 0 then wake() end
return out
