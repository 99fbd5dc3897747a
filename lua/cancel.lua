-- cancel.lua -- cancel a pending job (ready, delayed, failed-awaiting-retry or leased).
--
-- The job leaves whichever set holds it and is kept as cancelled (with the
-- reason) until result_ttl expires. A leased job's worker keeps running, but
-- its result is refused (its lease is no longer valid) and it is told so.
-- Idempotent: cancelling a cancelled job reports 0 and changes nothing.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready, delayed, leased, done, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  job id
-- ARGV[3]  reason (JSON error record text)
-- Returns: 1 = cancelled, 0 = already finished (succeeded, dead or
--   cancelled; nothing changed), -1 = no such job.

--@include lib/util.lua
--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local id = ARGV[2]
local rec = redis.call('HGET', K_JOBS, id)
local f = rec and rec_decode(rec)
if not f then return -1 end
if not is_pending(f[F_ST]) then return 0 end
unindex(f, id)
f[F_WK] = ''
to_done(f, id, now_ms(), 'C', ARGV[3])
count('cancelled', 1)
emit('cancelled', id)
return 1
