-- purge.lua -- delete up to LIMIT jobs of one state set from a queue.
--
-- Bounded per call; the client repeats until 0 is returned. Deleted leased
-- jobs' workers are refused when they report (stale lease).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, the chosen set and events.
-- ARGV[1]  which set: "ready", "delayed", "leased", "dead" or "done"
-- ARGV[2]  LIMIT, max jobs deleted by this call (integer 1..1000)
-- ARGV[3]  events stream max length (integer; 0 = no events)
-- ARGV[4]  actor: who asks (free text, for the audit event)
-- Returns: the number of jobs deleted by this call.
-- Errors: "ERR scheduler: bad arguments".
-- Events: audit (action "purge", the actor, the jobs deleted, detail the set)
--   when any was deleted (one per call).

--@include lib/record.lua
--@include lib/keys.lua
--@include lib/signals.lua

local sets = {ready = K_READY, delayed = K_DELAYED, leased = K_LEASED, dead = K_DEAD, done = K_DONE}
local key = sets[ARGV[1]]
local limit = tonumber(ARGV[2])
if not key or not limit or limit < 1 or limit > 1000 or #ARGV ~= 4 then
  return redis.error_reply('ERR scheduler: bad arguments')
end
events_init(tonumber(ARGV[3]))
local members = redis.call('ZRANGE', key, 0, limit - 1)
if #members == 0 then return 0 end
local ids = members
if key == K_READY or key == K_DELAYED then
  ids = {}
  for i, m in ipairs(members) do ids[i] = member_id(m) end
end
redis.call('HDEL', K_JOBS, unpack(ids))
redis.call('ZREM', key, unpack(members))
audit('purge', ARGV[4], #members, '', ARGV[1])
return #members
