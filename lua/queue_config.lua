-- queue_config.lua -- set a queue setting: pause/resume, or the aging rate.
--
-- Pausing stops workers leasing from the queue (enqueue, promotion and
-- expiry continue); resuming wakes an idle worker.
--
-- Aging: the queue keeps an aging clock A(t) (lib/record.lua clock_at), the
-- integral of the rate over time since the queue's first rate change; a
-- change starts a new linear piece at the current server time, continuous
-- with the old one. Waiting jobs keep their scores (A(ready) - priority), so
-- the call is O(1) in the number of waiting jobs, and their order is that of
-- priority + the aging accrued at each rate while they waited
-- (docs/design.md, "Ordering"). A due delayed job must be stamped with the
-- piece its ETA falls in, so due jobs are promoted first: while more than
-- ARGV[4] are due, the call promotes ARGV[4] of them, changes nothing else
-- and answers CONFIG_PROMOTING (the caller calls again).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   meta, wake; for aging also jobs, ready, delayed, events (promotion).
-- ARGV[1]  setting: "paused" or "aging"
-- ARGV[2]  value: "0"/"1" for paused; for aging a number in [0, AGING_MAX]
--          (priority units per second of waiting)
-- ARGV[3]  events stream max length (integer; 0 = no events)
-- ARGV[4]  promotion batch: max due jobs promoted per call (integer >= 1)
-- ARGV[5]  actor: who asks (free text, for the audit event; "" if absent)
-- Returns: {code, old} -- code CONFIG_SET (changed) or CONFIG_PROMOTING
--   (aging only: due jobs promoted, rate unchanged, call again); old is the
--   previous value as a string ("0" when unset).
-- Errors: "ERR scheduler: unknown setting", "ERR scheduler: bad value",
--   "ERR scheduler: bad arguments".
-- Events: promoted (aging, while due jobs are promoted first); audit when the
--   value changed (action "pause"/"resume", or "aging" with detail the new
--   rate; the actor; 0 jobs).

--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/maintenance.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/util.lua

-- Largest accepted rate (scheduler/priority.py MAX_AGING_RATE; why: there).
local AGING_MAX = 1e6

local name, value = ARGV[1], ARGV[2]
local maxlen, batch = tonumber(ARGV[3]), tonumber(ARGV[4])
if not maxlen or not batch or batch < 1 then
  return redis.error_reply('ERR scheduler: bad arguments')
end
events_init(maxlen)
local old = redis.call('HGET', K_META, name) or '0'
if name == 'paused' then
  if value ~= '0' and value ~= '1' then return redis.error_reply('ERR scheduler: bad value') end
  redis.call('HSET', K_META, 'paused', value)
  if value == '0' then wake() end
elseif name == 'aging' then
  local rate = tonumber(value)
  if not rate or not (rate >= 0 and rate <= AGING_MAX) then
    return redis.error_reply('ERR scheduler: bad value')
  end
  local now = now_ms()
  local clock = queue_clock()
  local promoted = promote_due(now, batch, clock)
  if promoted > 0 then wake() end
  if promoted == batch
      and #redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, 1) > 0 then
    return {CONFIG_PROMOTING, old}
  end
  redis.call('HSET', K_META, 'aging', value, 'aging_since', int(now),
             'aging_at', string.format('%.17g', clock_at(clock, now)))
else
  return redis.error_reply('ERR scheduler: unknown setting')
end
if tonumber(old) ~= tonumber(value) then
  local action = name
  if name == 'paused' then action = (value == '1') and 'pause' or 'resume' end
  audit(action, ARGV[5] or '', 0, '', name == 'aging' and value or '')
end
return {CONFIG_SET, old}
