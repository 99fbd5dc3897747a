-- run_now.lua -- promote one delayed (or failed, awaiting retry) job to ready now.
--
-- Its ready time becomes the server's now; it keeps its sequence number.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, delayed, ready, wake, events.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  job id
-- ARGV[3]  actor: who asks (free text, for the audit event)
-- Returns: a lib/codes.lua RUN_NOW_* code: RUN_NOW_PROMOTED, RUN_NOW_NOT_DELAYED,
--   RUN_NOW_NO_JOB.
--   A damaged record goes dead (lib/quarantine.lua) and answers RUN_NOW_NOT_DELAYED.
-- Errors: none.
-- Events: promoted (detail "manual"); audit (action "run_now", the actor, 1
--   job) when promoted; dead (detail "damaged") for a damaged record.

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
local id = ARGV[2]
local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id))
if damaged then return RUN_NOW_NOT_DELAYED end
if not f then return RUN_NOW_NO_JOB end
if f[F_STATE] ~= 'D' and f[F_STATE] ~= 'F' then return RUN_NOW_NOT_DELAYED end
redis.call('ZREM', K_DELAYED, rec_member(f, id))
f[F_READY_MS] = int(now_ms())
rec_stamp(f, queue_clock())
to_ready(f, id)
redis.call('HSET', K_JOBS, id, rec_encode(f))
emit('promoted', id, 'manual')
audit('run_now', ARGV[3], 1, id)
wake()
return RUN_NOW_PROMOTED
