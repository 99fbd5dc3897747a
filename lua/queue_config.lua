-- queue_config.lua -- set a queue setting: pause/resume, or the aging rate.
--
-- Pausing stops workers leasing from the queue (enqueue, promotion and
-- expiry continue); resuming wakes an idle worker. The aging rate applies to
-- jobs that become ready afterwards (existing scores are not rewritten, so
-- the call is O(1)).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   meta, wake.
-- ARGV[1]  setting: "paused" or "aging"
-- ARGV[2]  value: "0"/"1" for paused; a finite number >= 0 (priority units
--          per second of waiting) for aging
-- ARGV[3]  events stream max length (integer; 0 = no events)
-- ARGV[4]  actor: who asks (free text, for the audit event)
-- Returns: the previous value as a string ("0" when unset).
-- Errors: "ERR scheduler: unknown setting", "ERR scheduler: bad value".
-- Events: audit when the value changed (action "pause"/"resume", or "aging"
--   with detail the new rate; the actor; 0 jobs).

--@include lib/keys.lua
--@include lib/signals.lua

local name, value = ARGV[1], ARGV[2]
events_init(tonumber(ARGV[3]))
local old = redis.call('HGET', K_META, name) or '0'
if name == 'paused' then
  if value ~= '0' and value ~= '1' then return redis.error_reply('ERR scheduler: bad value') end
  redis.call('HSET', K_META, 'paused', value)
  if value == '0' then wake() end
elseif name == 'aging' then
  local a = tonumber(value)
  if not a or a < 0 or a ~= a or a == math.huge then
    return redis.error_reply('ERR scheduler: bad value')
  end
  redis.call('HSET', K_META, 'aging', value)
else
  return redis.error_reply('ERR scheduler: unknown setting')
end
if tonumber(old) ~= tonumber(value) then
  local action = name
  if name == 'paused' then action = (value == '1') and 'pause' or 'resume' end
  audit(action, ARGV[4] or '', 0, '', name == 'aging' and value or '')
end
return old
