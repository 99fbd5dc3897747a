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

-- A stored number: 1 to 15 ASCII digits (exact as a Lua number); the same
-- rule as _NUMBER in scheduler/backend/schedule_record.py.
local function sched_number(s)
  return #s >= 1 and #s <= 15 and string.find(s, '^[0-9]+$') ~= nil
end

-- Decode a schedule record into a table of S_NF strings; nil and a reason if
-- it is not a valid version-1 record. The rules are those of parse_stored in
-- scheduler/backend/schedule_record.py (tests/test_schedule_record.py
-- compares both on random records): 10 fields, version "1", status A/P/E,
-- digest 16 lowercase hex digits, numbers 1-15 ASCII digits (last fire may
-- be ""). Every script decodes before it writes, so a damaged record is
-- refused whole and never half-updated.
local function sched_decode(s)
  local f = {}
  local pos = 1
  for i = 1, S_NF - 1 do
    local j = string.find(s, S_SEP, pos, true)
    if not j then return nil, 'fields' end
    f[i] = string.sub(s, pos, j - 1)
    pos = j + 1
  end
  f[S_NF] = string.sub(s, pos)
  if f[S_VERSION] ~= S_VERSION_1 then return nil, 'version' end
  local st = f[S_STATUS]
  if st ~= 'A' and st ~= 'P' and st ~= 'E' then return nil, 'status' end
  if #f[S_DIGEST] ~= 16 or not string.find(f[S_DIGEST], '^[0-9a-f]+$') then
    return nil, 'digest'
  end
  if f[S_LAST_FIRE] ~= '' and not sched_number(f[S_LAST_FIRE]) then return nil, 'last_fire' end
  for _, i in ipairs({S_FIRED, S_MISSED, S_CREATED_MS, S_UPDATED_MS}) do
    if not sched_number(f[i]) then return nil, 'number' end
  end
  return f
end

-- A stored counter (decimal string) plus n, as a stored number: it stops at
-- 15 digits so the record stays valid (sched_number).
local function sched_add(counter, n)
  return string.format('%d', math.min(tonumber(counter) + n, 999999999999999))
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
