-- enqueue.lua -- create one or many jobs in one queue, atomically.
--
-- Idempotent by job id: a job id that already exists is left untouched and
-- reported as existing, so a client retry (redis-py re-sending the call after
-- a timeout) or a repeated idempotency key never creates a second job. A job
-- id becomes free again once its finished record has expired.
--
-- Learned run times: a job whose inputs carry "alpha,min_samples" (time
-- "auto") gets its estimated time and priority here, from its task's
-- statistics at enqueue time (lib/stats.lua stats_resolve), before the ready
-- score is computed from the priority (lib/record.lua ready_score: the one
-- place a score is made). The record keeps the estimate and what it was made
-- of, so `job show` explains the priority.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready, delayed, meta (seq), wake, events, stats.
-- KEYS[11] P:{Q}:taskstats HASH  run-time statistics (read)
-- KEYS[12] P:{Q}:limits    HASH  (not used; the extended key list)
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, number of jobs in this call (integer >= 1)
-- then N groups of 9 values (ARGV[3 + 9*(i-1)] ...):
--   id        job id (validated by the client)
--   task      task name
--   payload   JSON text "[args, kwargs]"
--   priority  priority as a decimal float string (client-validated, finite)
--   inputs    "weight,time,resource", or "weight,time,resource,alpha,min_samples"
--             for a learned time (time = the fallback, seconds), or "" when
--             an explicit priority was given
--   options   "max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms[,timeout_ms]" (integers;
--             -1 = keep dead forever; no timeout = no limit)
--   eta_ms    absolute ETA in ms since the Unix epoch, or "" for none
--   delay_ms  delay in ms counted from the server's clock, or "" for none
--   meta      JSON object text with caller metadata (e.g. cron origin), or ""
--   (a job with neither, or whose due time has passed, is ready at once)
-- Returns: an array of N integers (lib/codes.lua ENQUEUE_*): ENQUEUE_CREATED,
--   ENQUEUE_EXISTED (already existed, or an earlier group of this call had
--   the same id).
-- Errors: "ERR scheduler: bad argument count" if ARGV does not hold N groups.
-- Events: enqueued (one entry for the call's new jobs).

--@include lib/batch.lua
--@include lib/codes.lua
--@include lib/create.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/stats.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
local n = tonumber(ARGV[2])
local GROUP = 9
if not n or n < 1 or #ARGV ~= 2 + n * GROUP then
  return redis.error_reply('ERR scheduler: bad argument count')
end

local now = now_ms()
local clock = queue_clock()
local ids = {}
for i = 0, n - 1 do ids[i + 1] = ARGV[3 + i * GROUP] end
local existing = hmget_many(K_JOBS, ids)
local created, fresh, seen = {}, {}, {}
for i = 1, n do
  -- A repeated id within one call is created once, like a repeated call.
  if existing[i] or seen[ids[i]] then
    created[i] = ENQUEUE_EXISTED
  else
    seen[ids[i]] = true
    created[i] = ENQUEUE_CREATED
    fresh[#fresh + 1] = i
  end
end
if #fresh == 0 then return created end

-- Learned times: one HMGET of the tasks' statistics for the whole call.
local prio = {}
for k, i in ipairs(fresh) do
  local b = 3 + (i - 1) * GROUP
  prio[k] = {ARGV[b + 1], ARGV[b + 3], ARGV[b + 4]}
end
stats_resolve(prio)

-- This loop and its writes have the shape of cron_fire.lua's (new_job per
-- job, then one HSET / ZADD each). They stay apart: a shared per-job Lua
-- function (a library include) measured about 1% more Redis instructions
-- per job (callgrind, 100 jobs per call), and sharing only the writes about
-- 0.3% (one more library function made per call).
local first = next_seqs(#fresh)
local now_text = int(now)
local hset, zready, zdelayed, new_ids = {}, {}, {}, {}
for k, i in ipairs(fresh) do
  local b = 3 + (i - 1) * GROUP
  local due = now
  if ARGV[b + 6] ~= '' then
    due = tonumber(ARGV[b + 6])
  elseif ARGV[b + 7] ~= '' then
    due = now + tonumber(ARGV[b + 7])
  end
  local id = ids[i]
  local text, set, score, member = new_job(id, first + k - 1, ARGV[b + 1], ARGV[b + 2], prio[k][2],
                                           prio[k][3], ARGV[b + 5], ARGV[b + 8], due, now, clock,
                                           now_text)
  local z = set == K_READY and zready or zdelayed
  z[#z + 1] = score
  z[#z + 1] = member
  hset[#hset + 1] = id
  hset[#hset + 1] = text
  new_ids[k] = id
end
call_many({'HSET', K_JOBS}, hset)
call_many({'ZADD', K_READY}, zready)
call_many({'ZADD', K_DELAYED}, zdelayed)
emit_many('enqueued', new_ids)
count('enqueued', #fresh)
-- A new ready job, or a delayed one that may be due before what idle workers
-- are waiting for: wake one of them (it recomputes its wait).
wake()
return created
