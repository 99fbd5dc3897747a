-- purge.lua -- delete up to LIMIT jobs of one state set from a queue.
--
-- Bounded per call; the client repeats until 0 is returned. Deleted leased
-- jobs' workers are refused when they report (stale lease).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs and the chosen set.
-- ARGV[1]  which set: "ready", "delayed", "leased", "dead" or "done"
-- ARGV[2]  LIMIT, max jobs deleted by this call (integer 1..1000)
-- Returns: the number of jobs deleted by this call.
-- Errors: "ERR scheduler: bad arguments".
-- Events: none.

--@include lib/record.lua
--@include lib/keys.lua

local sets = {ready = K_READY, delayed = K_DELAYED, leased = K_LEASED, dead = K_DEAD, done = K_DONE}
local key = sets[ARGV[1]]
local limit = tonumber(ARGV[2])
if not key or not limit or limit < 1 or limit > 1000 then
  return redis.error_reply('ERR scheduler: bad arguments')
end
local members = redis.call('ZRANGE', key, 0, limit - 1)
if #members == 0 then return 0 end
local ids = members
if key == K_READY or key == K_DELAYED then
  ids = {}
  for i, m in ipairs(members) do ids[i] = member_id(m) end
end
redis.call('HDEL', K_JOBS, unpack(ids))
redis.call('ZREM', key, unpack(members))
return #members
