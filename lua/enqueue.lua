-- enqueue.lua -- create one or many jobs in one queue, atomically.
--
-- Idempotent by job id: a job id that already exists is left untouched and
-- reported as existing, so a client retry (redis-py re-sending the call after
-- a timeout) or a repeated idempotency key never creates a second job. A job
-- id becomes free again once its finished record has expired.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready, delayed, meta (seq), wake, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, number of jobs in this call (integer >= 1)
-- then N groups of 8 values (ARGV[3 + 8*(i-1)] ...):
--   id        job id (validated by the client)
--   task      task name
--   payload   JSON text "[args, kwargs]"
--   priority  priority as a decimal float string (client-validated, finite)
--   inputs    "weight,time,resource" or "" when an explicit priority was given
--   options   "max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms" (integers; -1 = keep dead forever)
--   eta_ms    absolute ETA in ms since the Unix epoch, or "" for none
--   delay_ms  delay in ms counted from the server's clock, or "" for none
--   (a job with neither, or whose due time has passed, is ready at once)
-- Returns: an array of N integers, 1 = created, 0 = already existed.
-- Errors: "ERR scheduler: bad argument count" if ARGV does not hold N groups.

--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local GROUP = 8
if not n or n < 1 or #ARGV ~= 2 + n * GROUP then
  return redis.error_reply('ERR scheduler: bad argument count')
end

local now = now_ms()
local aging = nil
local created, made_ready, made_delayed = {}, false, false
local total = 0
for i = 0, n - 1 do
  local b = 3 + i * GROUP
  local id = ARGV[b]
  if redis.call('HEXISTS', K_JOBS, id) == 1 then
    created[i + 1] = 0
  else
    local due = now
    if ARGV[b + 6] ~= '' then
      due = tonumber(ARGV[b + 6])
    elseif ARGV[b + 7] ~= '' then
      due = now + tonumber(ARGV[b + 7])
    end
    local f = {'1', 'R', '0', format_seq(next_seq()), '', '', int(now), int(now), '',
               ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 1], '', ARGV[b + 2]}
    if due > now then
      f[F_ST] = 'D'
      f[F_RDY] = int(due)
      redis.call('ZADD', K_DELAYED, due, rec_member(f, id))
      made_delayed = true
    else
      if aging == nil then aging = queue_aging() end
      to_ready(f, id, aging)
      made_ready = true
    end
    redis.call('HSET', K_JOBS, id, rec_encode(f))
    emit('enqueued', id)
    created[i + 1] = 1
    total = total + 1
  end
end
count('enqueued', total)
-- A new ready job, or a delayed one that may be due before what idle workers
-- are waiting for: wake one of them (it recomputes its wait).
if made_ready or made_delayed then wake() end
return created
