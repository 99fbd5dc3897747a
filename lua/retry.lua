-- retry.lua -- send finished or waiting jobs back to the ready set (operator retry).
--
-- Applies to dead, cancelled and succeeded jobs (run again from scratch:
-- attempts reset to 0) and to failed jobs waiting for their retry ETA (run
-- now, attempts kept). Each gets a new sequence number and ready time = now,
-- so it queues behind jobs of equal priority. Ready, delayed and leased jobs
-- are left alone. The lease token is cleared: a late report from the
-- lease that ended is refused.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready, delayed, dead, done, meta (seq), wake, events.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  actor: who asks (free text, for the audit event)
-- ARGV[3]  N, number of job ids (integer >= 0)
-- then N job ids
-- Returns: an array of N integers (lib/codes.lua RETRY_*): RETRY_REQUEUED,
--   RETRY_NOT_RETRYABLE (not in a retryable state), RETRY_NO_JOB.
--   A damaged record goes dead (lib/quarantine.lua) and answers RETRY_NOT_RETRYABLE
--   (a second retry requeues the dead record).
-- Errors: "ERR scheduler: bad argument count".
-- Events: rerun (an operator's re-run; "retried" is a failure's scheduled
--   retry, written by fail.lua); audit (action "retry", the actor, the jobs
--   requeued) when any was requeued; dead (detail "damaged") for a damaged record.

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
local actor = ARGV[2]
local n = tonumber(ARGV[3])
if not n or #ARGV ~= 3 + n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local clock = queue_clock()
local out = {}
local moved = {}
for i = 1, n do
  local id = ARGV[3 + i]
  local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id), now)
  local st = f and f[F_STATE]
  if damaged then
    out[i] = RETRY_NOT_RETRYABLE
  elseif not f then
    out[i] = RETRY_NO_JOB
  elseif st == 'X' or st == 'C' or st == 'S' or st == 'F' then
    if st == 'X' then
      redis.call('ZREM', K_DEAD, id)
    elseif st == 'F' then
      redis.call('ZREM', K_DELAYED, rec_member(f, id))
    else
      redis.call('ZREM', K_DONE, id)
    end
    if st ~= 'F' then f[F_ATTEMPTS] = '0' end
    f[F_SEQ] = format_seq(next_seq())
    f[F_READY_MS] = int(now)
    f[F_FINISHED_MS] = ''
    end_lease(f)
    rec_stamp(f, clock)
    to_ready(f, id)
    redis.call('HSET', K_JOBS, id, rec_encode(f))
    moved[#moved + 1] = id
    out[i] = RETRY_REQUEUED
  else
    out[i] = RETRY_NOT_RETRYABLE
  end
end
if #moved > 0 then
  emit_many('rerun', moved)
  audit('retry', actor, #moved, table.concat(moved, ','))
  wake()
end
return out
