-- run_now.lua -- promote one delayed (or failed, awaiting retry) job to ready now.
--
-- Its ready time becomes the server's now; it keeps its sequence number.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, delayed, ready, wake, events.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  job id
-- Returns: 1 = promoted, 0 = job is not delayed, -1 = no such job.

--@include lib/util.lua
--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local id = ARGV[2]
local rec = redis.call('HGET', K_JOBS, id)
local f = rec and rec_decode(rec)
if not f then return -1 end
if f[F_ST] ~= 'D' and f[F_ST] ~= 'F' then return 0 end
redis.call('ZREM', K_DELAYED, rec_member(f, id))
f[F_RDY] = int(now_ms())
to_ready(f, id, queue_aging())
redis.call('HSET', K_JOBS, id, rec_encode(f))
emit('promoted', id, 'manual')
wake()
return 1
