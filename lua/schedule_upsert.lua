-- schedule_upsert.lua -- create a schedule, or update its definition if it changed.
--
-- The definition is identified by its digest: storing the same definition
-- again changes nothing (its next fire time, pause state and history stay),
-- so any number of processes may upsert the schedules their code declares.
-- A changed definition replaces the stored one and restarts from the given
-- next fire time; a paused schedule stays paused, and the history (last fire,
-- last job, counters) is kept. Created/updated schedules are announced on the
-- pub/sub channel so sleeping cron processes recompute their wait.
-- A damaged record (one lib/schedule.lua cannot decode) is replaced whole,
-- as if created (its history is lost; UPSERT_REPLACED), and a record whose
-- definition text differs from the given one under the same digest (edited
-- by hand) is updated: storing a schedule again always repairs it.
--
-- KEYS[1]  P:{Q}:schedules  HASH  schedule id -> schedule record (lib/schedule.lua)
-- KEYS[2]  P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- KEYS[3]  P:{Q}:events   STREAM job events (lib/signals.lua: the audit event)
-- ARGV[1]  schedule id (validated by the client)
-- ARGV[2]  definition digest (16 lowercase hex digits, checked: the record
--          would be refused otherwise)
-- ARGV[3]  definition JSON (canonical)
-- ARGV[4]  next fire time, ms since the Unix epoch, computed by the client
--          from the server clock; "" if the schedule has no fire time left
-- ARGV[5]  status if created: "A" (active) or "P" (paused)
-- ARGV[6]  pub/sub channel announcing schedule changes (a channel, not a key)
-- ARGV[7]  message published on it (the queue name)
-- ARGV[8]  events stream max length (integer; 0 = no events)
-- ARGV[9]  actor: who asks (free text, for the audit event)
-- Returns: {code, status}: code (lib/codes.lua UPSERT_*) UPSERT_CREATED,
--   UPSERT_UPDATED, UPSERT_UNCHANGED or UPSERT_REPLACED (a damaged record
--   was replaced); status
--   the schedule's status letter afterwards ("A", "P" or "E").
-- Errors: "ERR scheduler: bad arguments" (nothing written).
-- Events: audit (action "schedule_create" or "schedule_update", the actor, 0
--   jobs, targets the schedule id) when created, replaced or changed; also
--   announces on the ARGV[6] pub/sub channel.

--@include lib/codes.lua
--@include lib/schedule.lua
--@include lib/util.lua
--@include lib/signals.lua

local K_SCHEDULES, K_CRON = KEYS[1], KEYS[2]

local id, digest, def, next_ms, initial = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if #ARGV ~= 9 or (initial ~= 'A' and initial ~= 'P')
    or (next_ms ~= '' and not tonumber(next_ms))
    or #digest ~= 16 or not string.find(digest, '^[0-9a-f]+$') then
  return redis.error_reply('ERR scheduler: bad arguments')
end

local now = now_ms()
local rec = redis.call('HGET', K_SCHEDULES, id)
local old = rec and sched_decode(rec)
if not old then
  local status = initial
  if status == 'A' then
    status = sched_activate(K_CRON, id, next_ms)
  else
    redis.call('ZREM', K_CRON, id)  -- a replaced record may have been in it
  end
  -- One positional constructor; each line names its field, in the order of
  -- lib/schedule.lua (tests/test_record_layout.py checks it).
  local f = {
    S_VERSION_1, -- S_VERSION
    status,      -- S_STATUS
    digest,      -- S_DIGEST
    '',          -- S_LAST_FIRE
    '',          -- S_LAST_JOB
    '0',         -- S_FIRED
    '0',         -- S_MISSED
    int(now),    -- S_CREATED_MS
    int(now),    -- S_UPDATED_MS
    def,         -- S_DEFINITION
  }
  redis.call('HSET', K_SCHEDULES, id, sched_encode(f))
  redis.call('PUBLISH', ARGV[6], ARGV[7])
  audit_to(KEYS[3], tonumber(ARGV[8]) or 0, 'schedule_create', ARGV[9], 0, id)
  if rec then return {UPSERT_REPLACED, status} end
  return {UPSERT_CREATED, status}
end

local f = old
if f[S_DIGEST] == digest and f[S_DEFINITION] == def then
  -- Unchanged. Repair an active schedule missing from the ZSET (keys lost).
  if f[S_STATUS] == 'A' and not redis.call('ZSCORE', K_CRON, id) then
    f[S_STATUS] = sched_activate(K_CRON, id, next_ms)
    redis.call('HSET', K_SCHEDULES, id, sched_encode(f))
  end
  return {UPSERT_UNCHANGED, f[S_STATUS]}
end

f[S_DIGEST] = digest
f[S_DEFINITION] = def
f[S_UPDATED_MS] = int(now)
if f[S_STATUS] ~= 'P' then f[S_STATUS] = sched_activate(K_CRON, id, next_ms) end
redis.call('HSET', K_SCHEDULES, id, sched_encode(f))
redis.call('PUBLISH', ARGV[6], ARGV[7])
audit_to(KEYS[3], tonumber(ARGV[8]) or 0, 'schedule_update', ARGV[9], 0, id)
return {UPSERT_UPDATED, f[S_STATUS]}
