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
-- then N groups of 9 values (ARGV[3 + 9*(i-1)] ...):
--   id        job id (validated by the client)
--   task      task name
--   payload   JSON text "[args, kwargs]"
--   priority  priority as a decimal float string (client-validated, finite)
--   inputs    "weight,time,resource" or "" when an explicit priority was given
--   options   "max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms" (integers; -1 = keep dead forever)
--   eta_ms    absolute ETA in ms since the Unix epoch, or "" for none
--   delay_ms  delay in ms counted from the server's clock, or "" for none
--   meta      JSON object text with caller metadata (e.g. cron origin), or ""
--   (a job with neither, or whose due time has passed, is ready at once)
-- Returns: an array of N integers, 1 = created, 0 = already existed.
-- Errors: "ERR scheduler: bad argument count" if ARGV does not hold N groups.

--@include lib/keys.lua
--@include lib/record.lua
--@include lib/create.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local GROUP = 9
if not n or n < 1 or #ARGV ~= 2 + n * GROUP then
  return redis.error_reply('ERR scheduler: bad argument count')
end

local now = now_ms()
local aging = queue_aging()
local created, woke = {}, false
local total = 0
for i = 0, n - 1 do
  local b = 3 + i * GROUP
  local due = now
  if ARGV[b + 6] ~= '' then
    due = tonumber(ARGV[b + 6])
  elseif ARGV[b + 7] ~= '' then
    due = now + tonumber(ARGV[b + 7])
  end
  local made = create_job(ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4],
                          ARGV[b + 5], ARGV[b + 8], due, now, aging)
  if made then
    created[i + 1] = 1
    total = total + 1
  else
    created[i + 1] = 0
  end
end
count('enqueued', total)
-- A new ready job, or a delayed one that may be due before what idle workers
-- are waiting for: wake one of them (it recomputes its wait).
if total > 0 then wake() end
return created
