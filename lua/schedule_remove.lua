-- schedule_remove.lua -- delete a schedule (jobs it already enqueued stay).
--
-- KEYS[1]  P:{Q}:schedules  HASH  schedule id -> schedule record
-- KEYS[2]  P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- ARGV[1]  schedule id
-- ARGV[2]  pub/sub channel announcing schedule changes (a channel, not a key)
-- ARGV[3]  message published on it (the queue name)
-- Returns: 1 removed, 0 no such schedule.
-- Errors: none.

local id = ARGV[1]
redis.call('ZREM', KEYS[2], id)
if redis.call('HDEL', KEYS[1], id) == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
