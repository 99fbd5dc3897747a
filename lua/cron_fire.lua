-- cron_fire.lua -- enqueue a schedule's due firings and advance it, atomically, exactly once.
--
-- The caller (a cron process) read the schedule's next fire time from the
-- cron ZSET, computed with croniter which firings to enqueue under the
-- misfire policy and the following next fire time, and passes all of it
-- here. The script checks-and-advances: it applies the plan only if the
-- stored next fire time is still the one the caller read and the definition
-- is unchanged (digest), so when several cron processes race for the same
-- firing exactly one succeeds and the others are told the schedule moved.
-- Job ids are derived from (schedule id, fire time); creating a job whose id
-- exists does nothing, so even a client retry of this call cannot duplicate.
-- Fire times later than the server clock are refused (never early).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); writes jobs, ready,
--   delayed, meta (seq), wake, events, stats.
-- KEYS[11] P:{Q}:taskstats  HASH  run-time statistics (read for a learned
--          "auto" time, as enqueue.lua; lib/stats.lua)
-- KEYS[12] P:{Q}:limits     HASH  (not used; the extended key list)
-- KEYS[13] P:{Q}:schedules  HASH  schedule id -> schedule record (lib/schedule.lua)
-- KEYS[14] P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  schedule id
-- ARGV[3]  definition digest the plan was computed from
-- ARGV[4]  expected next fire time: the ZSET score the caller read, ms
-- ARGV[5]  new next fire time, ms, later than ARGV[4]; "" = no fire time
--          left (the schedule becomes ended)
-- ARGV[6]  missed: due firings not enqueued by this call (integer >= 0)
-- ARGV[7..11] the job template: task, payload JSON, priority (decimal
--          float string), inputs ("weight,time,resource", the same with
--          ",alpha,min_samples" for a learned time, or ""), options
--          ("max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms") -- as enqueue.lua
-- ARGV[12] N, number of jobs to enqueue (integer >= 0)
-- then N groups of 4 values, ascending fire times:
--   job id    derived from (schedule id, fire time), validated by the client
--   fire_ms   the firing's fire time, ms since the Unix epoch (<= now)
--   due_ms    when the job becomes ready, ms (fire time + jitter; may be later
--             than now: the job is then delayed)
--   meta      JSON object text: schedule, fire_at, misfire policy, missed
-- Returns: (codes: lib/codes.lua FIRE_*)
--   {FIRE_FIRED, created, now}: applied; `created` jobs were created (a job
--   whose id existed is not re-created); now = server time, ms.
--   {FIRE_STALE, current}: stale, nothing written: the stored next fire time is no
--   longer ARGV[4] (another cron process fired it) or the schedule changed,
--   was paused or removed; current = the stored next fire time, or -1.
--   {FIRE_EARLY, now}: a fire time (or ARGV[4]) is later than the server clock;
--   nothing written.
-- Errors: "ERR scheduler: bad argument count", "ERR scheduler: next fire
--   time must be later than the expected one".
-- Events: enqueued (one entry per created job).

--@include lib/codes.lua
--@include lib/create.lua
--@include lib/queue.lua
--@include lib/schedule.lua
--@include lib/signals.lua
--@include lib/stats.lua
--@include lib/util.lua

local K_SCHEDULES, K_CRON = KEYS[13], KEYS[14]
events_init(tonumber(ARGV[1]))
local id, digest, expected, new_next = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local missed = tonumber(ARGV[6])
local n = tonumber(ARGV[12])
local GROUP, BASE = 4, 13
if not n or n < 0 or #ARGV ~= BASE - 1 + n * GROUP or not expected or not missed
    or (new_next ~= '' and not tonumber(new_next)) then
  return redis.error_reply('ERR scheduler: bad argument count')
end
if new_next ~= '' and tonumber(new_next) <= expected then
  return redis.error_reply('ERR scheduler: next fire time must be later than the expected one')
end

local score = redis.call('ZSCORE', K_CRON, id)
if not score then return {FIRE_STALE, -1} end
if tonumber(score) ~= expected then return {FIRE_STALE, score} end
local rec = redis.call('HGET', K_SCHEDULES, id)
local f = rec and sched_decode(rec)
if not f or f[S_STATUS] ~= 'A' or f[S_DIGEST] ~= digest then return {FIRE_STALE, score} end

local now = now_ms()
if expected > now then return {FIRE_EARLY, now} end
for i = 0, n - 1 do
  if tonumber(ARGV[BASE + i * GROUP + 1]) > now then return {FIRE_EARLY, now} end
end

local aging = queue_aging()
local created = 0
-- A learned ("auto") time is estimated once, at this call's server time.
local prio = {{ARGV[7], ARGV[9], ARGV[10]}}
if n > 0 then stats_resolve(prio) end
for i = 0, n - 1 do
  local b = BASE + i * GROUP
  if create_job(ARGV[b], ARGV[7], ARGV[8], prio[1][2], prio[1][3], ARGV[11], ARGV[b + 3],
                tonumber(ARGV[b + 2]), now, aging) then
    created = created + 1
  end
end
if n > 0 then
  local last = BASE + (n - 1) * GROUP
  f[S_LAST_FIRE] = ARGV[last + 1]
  f[S_LAST_JOB] = ARGV[last]
end
f[S_FIRED] = int(tonumber(f[S_FIRED]) + created)
f[S_MISSED] = int(tonumber(f[S_MISSED]) + missed)
f[S_STATUS] = sched_activate(K_CRON, id, new_next)
redis.call('HSET', K_SCHEDULES, id, sched_encode(f))
count('enqueued', created)
if created > 0 then wake() end
return {FIRE_FIRED, created, now}
