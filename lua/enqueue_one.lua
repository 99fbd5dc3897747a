-- enqueue_one.lua -- create one job: the single-job fast path of enqueue.lua.
--
-- The same job as enqueue.lua with N = 1 makes (record, ready or delayed
-- entry, "enqueued" event and counter, wake-up), with fewer commands and
-- fewer library definitions per call (docs/benchmarks.md, "Issue 16: enqueue
-- and memory"): no batch helpers, no run-time statistics, no tables per job.
--
-- Idempotent by job id: a job id that already exists is left untouched and
-- reported as existing (a client retry or a repeated idempotency key never
-- creates a second job). (HEXISTS, not HSETNX: the minimal ACL of
-- docs/operating.md does not allow HSETNX.)
--
-- A job whose inputs ask for a learned run time ("w,t,r,alpha,min_samples")
-- is refused: those go through enqueue.lua, which reads the task's
-- statistics (scheduler/backend/scripts.py routes them).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready or delayed, meta (seq), wake, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  "1" (the job count, as enqueue.lua's ARGV[2])
-- ARGV[3..11] the job's 9 values, as one group of enqueue.lua: id, task,
--   payload, priority, inputs ("" or "weight,time,resource"), options,
--   eta_ms, delay_ms, meta.
-- Returns: an array of one integer (lib/codes.lua): ENQUEUE_CREATED or
--   ENQUEUE_EXISTED.
-- Errors: "ERR scheduler: bad argument count" if ARGV is not one job;
--   "ERR scheduler: learned time needs enqueue" for learned-time inputs.
--   Nothing is written then.
-- Events: enqueued (the new job).

--@include lib/codes.lua
--@include lib/create.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
if #ARGV ~= 11 or ARGV[2] ~= '1' then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local id, inputs = ARGV[3], ARGV[7]
if string.find(inputs, '^[^,]*,[^,]*,[^,]*,[^,]*,[^,]*$') then
  return redis.error_reply('ERR scheduler: learned time needs enqueue')
end

if redis.call('HEXISTS', K_JOBS, id) == 1 then
  return {ENQUEUE_EXISTED}
end
local now = now_ms()
local due = now
if ARGV[9] ~= '' then
  due = tonumber(ARGV[9])
elseif ARGV[10] ~= '' then
  due = now + tonumber(ARGV[10])
end
local clock = nil
if due <= now then clock = queue_clock() end
local text, set, score, member = new_job(id, next_seq(), ARGV[4], ARGV[5], ARGV[6], inputs, ARGV[8],
                                         ARGV[11], due, now, clock)
redis.call('HSET', K_JOBS, id, text)
redis.call('ZADD', set, score, member)
emit('enqueued', id)
count('enqueued', 1)
-- A new ready job, or a delayed one that may be due before what idle workers
-- are waiting for: wake one of them (it recomputes its wait).
wake()
return {ENQUEUE_CREATED}
