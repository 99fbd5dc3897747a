-- schedule_remove.lua -- delete a schedule (jobs it already enqueued stay).
--
-- KEYS[1]  P:{Q}:schedules  HASH  schedule id -> schedule record
-- KEYS[2]  P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- KEYS[3]  P:{Q}:events   STREAM job events (lib/signals.lua: the audit event)
-- ARGV[1]  schedule id
-- ARGV[2]  pub/sub channel announcing schedule changes (a channel, not a key)
-- ARGV[3]  message published on it (the queue name)
-- ARGV[4]  events stream max length (integer; 0 = no events)
-- ARGV[5]  actor: who asks (free text, for the audit event)
-- Returns: a lib/codes.lua REMOVE_* code: REMOVE_REMOVED, REMOVE_NO_SCHEDULE.
-- Errors: none.
-- Events: audit (action "schedule_remove", the actor, 0 jobs, targets the
--   schedule id) when removed; also announces on the ARGV[2] pub/sub channel.

--@include lib/codes.lua
--@include lib/signals.lua

local id = ARGV[1]
redis.call('ZREM', KEYS[2], id)
if redis.call('HDEL', KEYS[1], id) == 0 then return REMOVE_NO_SCHEDULE end
redis.call('PUBLISH', ARGV[2], ARGV[3])
audit_to(KEYS[3], tonumber(ARGV[4]) or 0, 'schedule_remove', ARGV[5] or '', 0, id)
return REMOVE_REMOVED
