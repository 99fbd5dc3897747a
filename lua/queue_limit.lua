-- queue_limit.lua -- set or remove a concurrency or rate limit of a queue or
-- of one task in it (lib/limits.lua enforces them in lease.lua).
--
-- Validates everything before writing: a bad value writes nothing. Setting
-- a task's concurrency limit counts the task's leases already held (up to
-- LIMIT_SEED of the queue's leases are read), so the limit holds at once.
-- A new or removed rate starts with a full bucket. Wakes an idle worker (a
-- looser limit may let it lease).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script reads
--   jobs, leased and writes wake.
-- KEYS[11] P:{Q}:taskstats HASH  (not used; the extended key list)
-- KEYS[12] P:{Q}:limits    HASH  limits and their state (written)
-- ARGV[1]  scope: "" for the queue itself, or a task name
-- ARGV[2]  concurrency: "" = unchanged, "-" = remove, or an integer in
--          [1, 1e9] (leases held at once)
-- ARGV[3]  rate: "" = unchanged, "-" = remove, or "N/period_ms" (integers,
--          N in [1, 1e9], period_ms in [1, 31622400000])
-- ARGV[4]  events stream max length (integer; 0 = no events)
-- ARGV[5]  actor: who asks (free text, for the audit event; "" if absent)
-- Returns: {previous concurrency, previous rate} as stored ("" = none).
-- Errors: "ERR scheduler: bad value".
-- Events: audit when a limit changed (action "limit"; the actor; 0 jobs;
--   detail "<scope>;<concurrency>;<rate>" as stored afterwards, "" = none,
--   scope "" = the queue itself).

--@include lib/batch.lua
--@include lib/keys.lua
--@include lib/record.lua
--@include lib/signals.lua

local LIMIT_SEED = 10000
local scope, conc, rate = ARGV[1], ARGV[2], ARGV[3]

local function valid_int(s, max)
  return string.find(s, '^%d+$') ~= nil and #s <= 12 and tonumber(s) >= 1 and tonumber(s) <= max
end
if #ARGV ~= 5 or string.find(scope, '[,;]') or not string.find(ARGV[4], '^%d+$') then
  return redis.error_reply('ERR scheduler: bad value')
end
if conc ~= '' and conc ~= '-' and not valid_int(conc, 1e9) then
  return redis.error_reply('ERR scheduler: bad value')
end
if rate ~= '' and rate ~= '-' then
  local n, p = string.match(rate, '^(%d+)/(%d+)$')
  if not (n and valid_int(n, 1e9) and valid_int(p, 31622400000)) then
    return redis.error_reply('ERR scheduler: bad value')
  end
end

local old = redis.call('HMGET', K_LIMITS, 'conc:' .. scope, 'rate:' .. scope)
if conc == '-' then
  redis.call('HDEL', K_LIMITS, 'conc:' .. scope, 'held:' .. scope)
elseif conc ~= '' then
  redis.call('HSET', K_LIMITS, 'conc:' .. scope, conc)
  if scope ~= '' and not old[1] then
    -- Count the task's leases held now (the lease script adds later ones).
    local ids = redis.call('ZRANGE', K_LEASED, 0, LIMIT_SEED - 1)
    local recs = hmget_many(K_JOBS, ids)
    local held = {}
    for i, id in ipairs(ids) do
      local f = recs[i] and rec_decode(recs[i])
      if f and f[F_STATE] == 'L' and f[F_TASK] == scope then held[#held + 1] = id end
    end
    if #held > 0 then
      redis.call('HSET', K_LIMITS, 'held:' .. scope, table.concat(held, ','))
    end
  end
end
if rate == '-' then
  redis.call('HDEL', K_LIMITS, 'rate:' .. scope, 'bucket:' .. scope)
elseif rate ~= '' then
  redis.call('HSET', K_LIMITS, 'rate:' .. scope, rate)
  redis.call('HDEL', K_LIMITS, 'bucket:' .. scope)
end
local new = redis.call('HMGET', K_LIMITS, 'conc:' .. scope, 'rate:' .. scope)
if new[1] ~= old[1] or new[2] ~= old[2] then
  events_init(tonumber(ARGV[4]))
  audit('limit', ARGV[5], 0, '', scope .. ';' .. (new[1] or '') .. ';' .. (new[2] or ''))
end
wake()
return {old[1] or '', old[2] or ''}
