-- lib/schedule.lua -- library included by the schedule_* and cron_* scripts (not run on its own).
--
-- KEYS: none of its own. Every including script declares, before the
-- include line, the locals K_SCHEDULES (its P:{Q}:schedules HASH key) and
-- K_CRON (its P:{Q}:cron ZSET key), taken from its own KEYS; and includes
-- lib/util.lua (int, now_ms) first.
-- ARGV: none of its own.
--
-- Schedule record codec. A schedule is one entry of the schedules HASH
-- (field = schedule id); its value is 10 fields joined by "\31", see
-- scheduler/cron/state.py:
--   1 version "1"   2 status A(ctive)/P(aused)/E(nded)   3 definition digest
--   4 last fire ms or ""   5 last job id or ""   6 fired   7 missed
--   8 created ms   9 updated ms   10 definition JSON (the rest of the value)
-- An active schedule is in the cron ZSET, scored by its next fire time (ms);
-- paused and ended ones are not.

local S_SEP = '\31'
local S_NF = 10
local S_VER, S_ST, S_DIG, S_LAST, S_LJOB, S_FIRED, S_MISSED, S_CREATED, S_UPDATED, S_DEF =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10

-- Decode a schedule record into a table of S_NF strings; nil if malformed.
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
  if f[S_VER] ~= '1' then return nil end
  return f
end

local function sched_encode(f)
  return table.concat(f, S_SEP, 1, S_NF)
end


-- Put an active schedule in the cron ZSET at `next_ms` (a decimal string,
-- "" = no fire time left): returns the status letter it ends up with.
local function sched_activate(id, next_ms)
  if next_ms == '' then
    redis.call('ZREM', K_CRON, id)
    return 'E'
  end
  redis.call('ZADD', K_CRON, tonumber(next_ms), id)
  return 'A'
end
