-- schedule_pause.lua -- pause or resume a schedule.
--
-- Pausing takes the schedule out of the cron ZSET: nothing fires while it is
-- paused, and firings due meanwhile are not caught up on resume (they are
-- not misfires). Resuming puts it back at the next fire time the client
-- computed from the server clock. Both are announced on the pub/sub channel.
--
-- KEYS[1]  P:{Q}:schedules  HASH  schedule id -> schedule record (lib/schedule.lua)
-- KEYS[2]  P:{Q}:cron       ZSET  schedule id by next fire time, ms
-- KEYS[3]  P:{Q}:events   STREAM job events (lib/signals.lua: the audit event)
-- ARGV[1]  schedule id
-- ARGV[2]  "1" pause, "0" resume
-- ARGV[3]  resume only: next fire time, ms since the Unix epoch, or "" if the
--          schedule has no fire time left (it becomes ended)
-- ARGV[4]  pub/sub channel announcing schedule changes (a channel, not a key)
-- ARGV[5]  message published on it (the queue name)
-- ARGV[6]  events stream max length (integer; 0 = no events)
-- ARGV[7]  actor: who asks (free text, for the audit event)
-- Returns: a lib/codes.lua PAUSE_* code: PAUSE_CHANGED, PAUSE_UNCHANGED (already
--   in that state; resume: not paused), PAUSE_NO_SCHEDULE.
-- Errors: "ERR scheduler: bad arguments", "ERR scheduler: bad schedule record".
-- Events: audit (action "schedule_pause" or "schedule_resume", the actor, 0
--   jobs, targets the schedule id) when changed; also announces on the
--   ARGV[4] pub/sub channel.

--@include lib/codes.lua
--@include lib/schedule.lua
--@include lib/signals.lua

local K_SCHEDULES, K_CRON = KEYS[1], KEYS[2]

local id, pause, next_ms = ARGV[1], ARGV[2], ARGV[3]
if #ARGV ~= 7 or (pause ~= '0' and pause ~= '1') or (next_ms ~= '' and not tonumber(next_ms)) then
  return redis.error_reply('ERR scheduler: bad arguments')
end
local rec = redis.call('HGET', K_SCHEDULES, id)
if not rec then return PAUSE_NO_SCHEDULE end
local f = sched_decode(rec)
if not f then return redis.error_reply('ERR scheduler: bad schedule record') end

if pause == '1' then
  if f[S_STATUS] == 'P' then return PAUSE_UNCHANGED end
  f[S_STATUS] = 'P'
  redis.call('ZREM', K_CRON, id)
else
  if f[S_STATUS] ~= 'P' then return PAUSE_UNCHANGED end
  f[S_STATUS] = sched_activate(K_CRON, id, next_ms)
end
redis.call('HSET', K_SCHEDULES, id, sched_encode(f))
redis.call('PUBLISH', ARGV[4], ARGV[5])
audit_to(KEYS[3], tonumber(ARGV[6]) or 0, pause == '1' and 'schedule_pause' or 'schedule_resume',
         ARGV[7], 0, id)
return PAUSE_CHANGED
