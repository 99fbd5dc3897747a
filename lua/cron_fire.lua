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
-- later than the server clock are refused (never early). A plan made ahead
-- of its fire time carries `until`, from which it is refused (FIRE_LATE).
-- An id repeated within one call applies once. Every entry is checked
-- before anything is written; the writes then go out in batches (one
-- HSET / ZADD / ZREM per key, one event).
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
-- then M entries, each 13 values followed by 4 per job:
--   id        schedule id (the hash field the caller read)
--   record    the record the caller read, byte for byte; "" = it had none
--   expected  the cron ZSET score the caller read, ms
--   action    "F" fire, "D" drop (take out of the cron ZSET: damaged record)
--   new_next  new next fire time, ms, later than expected; "" = no fire time
--             left (the schedule becomes ended); "" for a drop
--   missed    due firings not enqueued by this entry (integer >= 0)
--   until     the plan holds while the server clock is before this, ms (a
--             plan computed ahead of its fire time: from then on the misfire
--             policy could decide otherwise); "" = no bound
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
--   FIRE_LATE, now: the server clock is at or past `until`; nothing written
--     (the caller plans the firing again with the current time).
-- Errors: "ERR scheduler: bad arguments" (nothing written).
-- Events: enqueued (one entry naming every job created by the call).

--@include lib/batch.lua
--@include lib/codes.lua
--@include lib/create.lua
--@include lib/queue.lua
--@include lib/schedule.lua
--@include lib/signals.lua
--@include lib/stats.lua
--@include lib/util.lua

local K_SCHEDULES, K_CRON = KEYS[13], KEYS[14]
local FIXED, GROUP = 13, 4

-- Validate every entry before writing anything; returns their start offsets.
local function entries()
  local starts = {}
  local m = tonumber(ARGV[2])
  if not m or m < 0 or m ~= math.floor(m) then return nil end
  local b = 3
  for _ = 1, m do
    if b + FIXED - 1 > #ARGV then return nil end
    local expected, action, new_next = tonumber(ARGV[b + 2]), ARGV[b + 3], ARGV[b + 4]
    local missed, valid, n = tonumber(ARGV[b + 5]), ARGV[b + 6], tonumber(ARGV[b + 12])
    if not expected or (action ~= 'F' and action ~= 'D') or not missed or missed < 0
        or not n or n < 0 or n ~= math.floor(n) or (valid ~= '' and not tonumber(valid)) then
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

-- Reads in batches: every entry's record (one HMGET), its cron score (a
-- ZSCORE each), then the job ids of the entries that apply (one HMGET).
-- Writes in batches, after every check: one HSET / ZADD / ZREM per key.
local ids = {}
for k, b in ipairs(starts) do ids[k] = ARGV[b] end
local recs = hmget_many(K_SCHEDULES, ids)
local seen = {}

-- Check entry k (ARGV offset b) against what is stored now: its reply code
-- and value, and for one to fire its decoded record.
local function check(k, b)
  local id, expected = ids[k], tonumber(ARGV[b + 2])
  local score = redis.call('ZSCORE', K_CRON, id)
  if not score then return FIRE_STALE, -1 end
  score = tonumber(score)
  -- An id repeated within one call applies once (as a repeated call would).
  if score ~= expected or seen[id] then return FIRE_STALE, score end
  local rec = recs[k]
  if (rec or '') ~= ARGV[b + 1] then return FIRE_STALE, score end
  seen[id] = true
  if ARGV[b + 3] == 'D' or not rec then return FIRE_DROPPED, 0 end
  local f = sched_decode(rec)
  if not f or f[S_STATUS] ~= 'A' then return FIRE_DROPPED, 0 end
  if expected > now then return FIRE_EARLY, now end
  for i = 0, tonumber(ARGV[b + 12]) - 1 do
    if tonumber(ARGV[b + FIXED + i * GROUP + 1]) > now then return FIRE_EARLY, now end
  end
  if ARGV[b + 6] ~= '' and now >= tonumber(ARGV[b + 6]) then return FIRE_LATE, now end
  return FIRE_FIRED, 0, f
end

local reply = {now}
local firing, records, cron_rem = {}, {}, {}
for k, b in ipairs(starts) do
  local code, value, f = check(k, b)
  reply[2 * k], reply[2 * k + 1] = code, value
  if f then
    firing[#firing + 1] = k
    records[k] = f
  elseif code == FIRE_DROPPED then
    cron_rem[#cron_rem + 1] = ids[k]
  end
end

-- The jobs of the firing entries; a job whose id exists is not created again.
local job_ids, job_of = {}, {}
for _, k in ipairs(firing) do
  local b = starts[k]
  for i = 0, tonumber(ARGV[b + 12]) - 1 do
    job_ids[#job_ids + 1] = ARGV[b + FIXED + i * GROUP]
    job_of[#job_ids] = {k, b + FIXED + i * GROUP}
  end
end
local existing = hmget_many(K_JOBS, job_ids)
local fresh, taken = {}, {}
for j = 1, #job_ids do
  if not existing[j] and not taken[job_ids[j]] then
    taken[job_ids[j]] = true
    fresh[#fresh + 1] = j
  end
end
-- A learned ("auto") time is estimated once per entry, at this server time.
local prio, prio_of = {}, {}
for _, k in ipairs(firing) do
  local b = starts[k]
  prio[#prio + 1] = {ARGV[b + 7], ARGV[b + 9], ARGV[b + 10]}
  prio_of[k] = prio[#prio]
end
if #fresh > 0 then stats_resolve(prio) end

-- This loop and its writes have the shape of enqueue.lua's (new_job per
-- job, then one HSET / ZADD each). They stay apart: a shared per-job Lua
-- function (a library include) measured about 1% more Redis instructions
-- per job (callgrind, 100 jobs per call), and sharing only the writes about
-- 0.3% (one more library function made per call).
local first = #fresh > 0 and next_seqs(#fresh) or 0
local hjobs, zready, zdelayed, new_ids, created = {}, {}, {}, {}, {}
local now_text = int(now)
for n, j in ipairs(fresh) do
  local k, g = job_of[j][1], job_of[j][2]
  local b, id = starts[k], job_ids[j]
  local due = tonumber(ARGV[g + 2])
  local text, set, score, member = new_job(id, first + n - 1, ARGV[b + 7], ARGV[b + 8], prio_of[k][2],
                                           prio_of[k][3], ARGV[b + 11], ARGV[g + 3], due, now, clock,
                                           now_text)
  local z = set == K_READY and zready or zdelayed
  z[#z + 1] = score
  z[#z + 1] = member
  hjobs[#hjobs + 1] = id
  hjobs[#hjobs + 1] = text
  new_ids[n] = id
  created[k] = (created[k] or 0) + 1
end

-- The firing schedules: counters, last firing, next fire time (or ended).
local hsched, cron_add = {}, {}
for _, k in ipairs(firing) do
  local b, f, id = starts[k], records[k], ids[k]
  local n = tonumber(ARGV[b + 12])
  if n > 0 then
    local last = b + FIXED + (n - 1) * GROUP
    f[S_LAST_FIRE] = ARGV[last + 1]
    f[S_LAST_JOB] = ARGV[last]
  end
  f[S_FIRED] = sched_add(f[S_FIRED], created[k] or 0)
  f[S_MISSED] = sched_add(f[S_MISSED], tonumber(ARGV[b + 5]))
  if ARGV[b + 4] == '' then
    f[S_STATUS] = 'E'
    cron_rem[#cron_rem + 1] = id
  else
    f[S_STATUS] = 'A'
    cron_add[#cron_add + 1] = ARGV[b + 4]
    cron_add[#cron_add + 1] = id
  end
  hsched[#hsched + 1] = id
  hsched[#hsched + 1] = sched_encode(f)
  reply[2 * k + 1] = created[k] or 0
end

call_many({'HSET', K_JOBS}, hjobs)
call_many({'ZADD', K_READY}, zready)
call_many({'ZADD', K_DELAYED}, zdelayed)
call_many({'HSET', K_SCHEDULES}, hsched)
call_many({'ZADD', K_CRON}, cron_add)
zrem_all(K_CRON, cron_rem)
emit_many('enqueued', new_ids)
count('enqueued', #fresh)
if #fresh > 0 then wake() end
return reply
