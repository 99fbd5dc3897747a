-- cron_fire.lua -- fire a batch of due schedules of one queue, each atomically and exactly once.
--
-- The caller (a cron process) read each schedule's next fire time (its score
-- in the cron ZSET) and its record, computed with croniter which firings to
-- enqueue under the misfire policy and the following next fire time, and
-- passes the plans of up to a few hundred schedules here. Each entry is
-- checked-and-advanced on its own: it is applied only if the stored next
-- fire time is still the one the caller read and the record is byte for byte
-- the one it read, so when several cron processes race for the same
-- firing exactly one succeeds and the others are told it moved. Job ids are
-- derived from (schedule id, fire time); creating a job whose id exists does
-- nothing, so even a client retry of this call cannot duplicate. Fire times
-- later than the server clock are refused (never early).
--
-- A record the caller found damaged (not a valid record, a definition that
-- does not decode or names another id or queue, in the cron ZSET while not
-- active, or missing) comes as a "drop" entry: it is taken out of the cron
-- ZSET (the record itself stays, for `scheduler schedules list` to show and
-- `remove` or a new upsert to replace), so it neither fires nor delays the
-- others. All arguments are validated before anything is written; an entry
-- that does not apply writes nothing and never stops the other entries.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); writes jobs, ready,
--   delayed, meta (seq), wake, events, stats.
-- KEYS[11] P:{Q}:taskstats  HASH  run-time statistics (read for a learned
--          "auto" time, as enqueue.lua; lib/stats.lua)
-- KEYS[12] P:{Q}:limits     HASH  (not used; the extended key list)
-- KEYS[13] P:{Q}:schedules  HASH  schedule id -> schedule record (lib/schedule.lua)
-- KEYS[14] P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  M, number of entries (integer >= 0)
-- then M entries, each 12 values followed by 4 per job:
--   id        schedule id (the hash field the caller read)
--   record    the record the caller read, byte for byte; "" = it had none
--   expected  the cron ZSET score the caller read, ms
--   action    "F" fire, "D" drop (take out of the cron ZSET: damaged record)
--   new_next  new next fire time, ms, later than expected; "" = no fire time
--             left (the schedule becomes ended); "" for a drop
--   missed    due firings not enqueued by this entry (integer >= 0)
--   task, payload JSON, priority (decimal float string), inputs
--             ("weight,time,resource", the same with ",alpha,min_samples"
--             for a learned time, or ""), options
--             ("max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms[,timeout_ms]"): the job
--             template, as enqueue.lua ("" for a drop)
--   N         number of jobs (integer >= 0; 0 for a drop)
--   then N groups of 4 values, ascending fire times:
--     job id  derived from (schedule id, fire time), validated by the client
--     fire_ms the firing's fire time, ms since the Unix epoch (<= now)
--     due_ms  when the job becomes ready, ms (fire time + jitter; may be
--             later than now: the job is then delayed)
--     meta    JSON object text: schedule, fire_at, misfire policy, missed
-- Returns: {now, code_1, value_1, ..., code_M, value_M}: now = server time,
--   ms; per entry a lib/codes.lua FIRE_* code and its value:
--   FIRE_FIRED, created: applied; `created` jobs were created (a job whose
--     id existed is not re-created).
--   FIRE_STALE, current: nothing written: the stored next fire time is no
--     longer `expected` (another cron process fired it) or the record changed
--     (updated, paused, removed); current = the stored next fire time, or -1.
--   FIRE_EARLY, now: `expected` or a fire time is later than the server
--     clock; nothing written.
--   FIRE_DROPPED, 0: taken out of the cron ZSET (a drop entry, or a record
--     this script cannot decode or that is not active).
-- Errors: "ERR scheduler: bad arguments" (nothing written).
-- Events: enqueued (one entry per created job).

--@include lib/codes.lua
--@include lib/create.lua
--@include lib/queue.lua
--@include lib/schedule.lua
--@include lib/signals.lua
--@include lib/stats.lua
--@include lib/util.lua

local K_SCHEDULES, K_CRON = KEYS[13], KEYS[14]
local FIXED, GROUP = 12, 4

-- Validate every entry before writing anything; returns their start offsets.
local function entries()
  local starts = {}
  local m = tonumber(ARGV[2])
  if not m or m < 0 or m ~= math.floor(m) then return nil end
  local b = 3
  for _ = 1, m do
    if b + FIXED - 1 > #ARGV then return nil end
    local expected, action, new_next = tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
    local missed, n = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 11])
    if not expected or (action ~= 'F' and action ~= 'D') or not missed or missed < 0
        or not n or n < 0 or n ~= math.floor(n) then
      return nil
    end
    if new_next ~= '' and not (tonumber(new_next) and tonumber(new_next) > expected) then
      return nil
    end
    for i = 0, n - 1 do
      local g = b + FIXED + i * GROUP
      if not tonumber(ARGV[g + 1]) or not tonumber(ARGV[g + 2]) then return nil end
    end
    starts[#starts + 1] = b
    b = b + FIXED + n * GROUP
  end
  if b ~= #ARGV + 1 then return nil end
  return starts
end

local starts = entries()
if not starts then return redis.error_reply('ERR scheduler: bad arguments') end
events_init(tonumber(ARGV[1]))
local now = now_ms()
local clock = queue_clock()
local reply = {now}
local total = 0

local function drop(id)
  redis.call('ZREM', K_CRON, id)
  return FIRE_DROPPED, 0
end

local function fire(b)
  local id, expected, n = ARGV[b], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 11])
  local score = redis.call('ZSCORE', K_CRON, id)
  if not score then return FIRE_STALE, -1 end
  if tonumber(score) ~= expected then return FIRE_STALE, tonumber(score) end
  local rec = redis.call('HGET', K_SCHEDULES, id)
  if (rec or '') ~= ARGV[b + 1] then return FIRE_STALE, tonumber(score) end
  if ARGV[b + 3] == 'D' or not rec then return drop(id) end
  local f = sched_decode(rec)
  if not f or f[S_STATUS] ~= 'A' then return drop(id) end
  if expected > now then return FIRE_EARLY, now end
  for i = 0, n - 1 do
    if tonumber(ARGV[b + FIXED + i * GROUP + 1]) > now then return FIRE_EARLY, now end
  end
  local created = 0
  -- A learned ("auto") time is estimated once per entry, at this server time.
  local prio = {{ARGV[b + 6], ARGV[b + 8], ARGV[b + 9]}}
  if n > 0 then stats_resolve(prio) end
  for i = 0, n - 1 do
    local g = b + FIXED + i * GROUP
    if create_job(ARGV[g], ARGV[b + 6], ARGV[b + 7], prio[1][2], prio[1][3], ARGV[b + 10],
                  ARGV[g + 3], tonumber(ARGV[g + 2]), now, clock) then
      created = created + 1
    end
  end
  if n > 0 then
    local last = b + FIXED + (n - 1) * GROUP
    f[S_LAST_FIRE] = ARGV[last + 1]
    f[S_LAST_JOB] = ARGV[last]
  end
  f[S_FIRED] = sched_add(f[S_FIRED], created)
  f[S_MISSED] = sched_add(f[S_MISSED], tonumber(ARGV[b + 5]))
  f[S_STATUS] = sched_activate(K_CRON, id, ARGV[b + 4])
  redis.call('HSET', K_SCHEDULES, id, sched_encode(f))
  total = total + created
  return FIRE_FIRED, created
end

for _, b in ipairs(starts) do
  local code, value = fire(b)
  reply[#reply + 1] = code
  reply[#reply + 1] = value
end
count('enqueued', total)
if total > 0 then wake() end
return reply
