-- lib/schedule.lua -- library included by the schedule_* and cron_* scripts (not run on its own).
--
-- KEYS: none of its own: sched_activate takes the cron ZSET key (the
-- including script's P:{Q}:cron) as an argument. ARGV: none of its own.
-- Includes: none.
--
-- Schedule record codec. A schedule is one entry of the schedules HASH
-- (field = schedule id); its value is 10 fields joined by "\31", see
-- scheduler/backend/schedule_record.py FIELDS; S_<FIELD NAME> is its 1-based index:
--   1 version "1"   2 status A(ctive)/P(aused)/E(nded)   3 definition digest
--   4 last fire ms or ""   5 last job id or ""   6 fired   7 missed
--   8 created ms   9 updated ms   10 definition JSON (the rest of the value)
-- An active schedule is in the cron ZSET, scored by its next fire time (ms);
-- paused and ended ones are not.

local S_SEP, S_NF, S_VERSION_1 = '\31', 10, '1'
local S_VERSION, S_STATUS, S_DIGEST, S_LAST_FIRE, S_LAST_JOB, S_FIRED, S_MISSED, S_CREATED_MS, S_UPDATED_MS, S_DEFINITION =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10

-- Decode a schedule record into a table of S_NF strings; nil if malformed or
-- of another version (the scripts then answer "ERR scheduler: bad schedule
-- record": a schedule is one entry, so refusing it stops nothing else).
local function sched_decode(s)
  local f = {}
  local pos = 1
  for i = 1, S_NF - 1 do
    local j = string.find(s, S_SEP, pos, true)
    if not j then return nil end
    f[i] = string.sub(s, pos, j - 1)
    pos = j + 1
  end
  f[S_NF] = string.sub(s, pos)
  if f[S_VERSION] ~= S_VERSION_1 then return nil end
  return f
end

local function sched_encode(f)
  return table.concat(f, S_SEP, 1, S_NF)
end

-- Put an active schedule in the cron ZSET `k_cron` at `next_ms` (a decimal string,
-- "" = no fire time left): returns the status letter it ends up with.
local function sched_activate(k_cron, id, next_ms)
  if next_ms == '' then
    redis.call('ZREM', k_cron, id)
    return 'E'
  end
  redis.call('ZADD', k_cron, tonumber(next_ms), id)
  return 'A'
end
