-- cancel.lua -- cancel a pending job (ready, delayed, failed-awaiting-retry or leased).
--
-- The job leaves whichever set holds it and is kept as cancelled (with the
-- reason) until result_ttl expires. A leased job's worker keeps running, but
-- its result is refused (its lease is no longer valid) and it is told so.
-- Idempotent: cancelling a cancelled job reports CANCEL_ALREADY_FINAL and
-- changes nothing. The lease token is cleared: the late worker is refused.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready, delayed, leased, done, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  job id
-- ARGV[3]  reason (JSON error record text)
-- ARGV[4]  actor: who asks (free text, for the audit event)
-- Returns: a lib/codes.lua CANCEL_* code: CANCEL_CANCELLED, CANCEL_ALREADY_FINAL
--   (succeeded, dead or cancelled; nothing changed), CANCEL_NO_JOB.
--   A damaged record goes dead (lib/quarantine.lua) and answers CANCEL_ALREADY_FINAL.
-- Errors: none.
-- Events: cancelled; audit (action "cancel", the actor, 1 job) when cancelled;
--   dead (detail "damaged") for a damaged record.

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
local id = ARGV[2]
local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id))
if damaged then return CANCEL_ALREADY_FINAL end
if not f then return CANCEL_NO_JOB end
if not is_pending(f[F_STATE]) then return CANCEL_ALREADY_FINAL end
unindex(f, id)
end_lease(f)
to_done(f, id, now_ms(), 'C', ARGV[3])
count('cancelled', 1)
emit('cancelled', id)
audit('cancel', ARGV[4], 1, id)
return CANCEL_CANCELLED
