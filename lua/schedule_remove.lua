-- schedule_remove.lua -- delete a schedule (jobs it already enqueued stay).
--
-- KEYS[1]  P:{Q}:schedules  HASH  schedule id -> schedule record
-- KEYS[2]  P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- ARGV[1]  schedule id
-- ARGV[2]  pub/sub channel announcing schedule changes (a channel, not a key)
-- ARGV[3]  message published on it (the queue name)
-- Returns: a lib/codes.lua REMOVE_* code: REMOVE_REMOVED, REMOVE_NO_SCHEDULE.
-- Errors: none.
-- Events: none (announces on the ARGV[2] pub/sub channel instead).

--@include lib/codes.lua

local id = ARGV[1]
redis.call('ZREM', KEYS[2], id)
if redis.call('HDEL', KEYS[1], id) == 0 then return REMOVE_NO_SCHEDULE end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return REMOVE_REMOVED
