-- reprioritize.lua -- change the priority of a waiting job.
--
-- A ready job is rescored in place (it keeps its sequence number, so it
-- keeps its FIFO position among jobs of the new equal priority); a delayed
-- or failed job gets the new priority when promoted. Leased and finished
-- jobs are refused.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, ready, events.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  job id
-- ARGV[3]  new priority, decimal float string (client-validated, finite)
-- ARGV[4]  new priority inputs "weight,time,resource", or "" for explicit
-- Returns: 1 = changed, 0 = job not waiting (leased or finished), -1 = no such job.

--@include lib/util.lua
--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local id = ARGV[2]
local rec = redis.call('HGET', K_JOBS, id)
local f = rec and rec_decode(rec)
if not f then return -1 end
local st = f[F_ST]
if st ~= 'R' and st ~= 'D' and st ~= 'F' then return 0 end
f[F_PRI] = ARGV[3]
f[F_PIN] = ARGV[4]
if st == 'R' then
  redis.call('ZADD', K_READY, ready_score(queue_aging(), f), rec_member(f, id))
end
redis.call('HSET', K_JOBS, id, rec_encode(f))
emit('reprioritized', id, ARGV[3])
return 1
