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
-- ARGV[5]  actor: who asks (free text, for the audit event)
-- Returns: a lib/codes.lua REPRIORITIZE_* code: REPRIORITIZE_CHANGED,
--   REPRIORITIZE_NOT_WAITING (leased or finished), REPRIORITIZE_NO_JOB.
--   A damaged record goes dead (lib/quarantine.lua) and answers REPRIORITIZE_NOT_WAITING.
-- Errors: none.
-- Events: reprioritized (detail: the new priority); audit (action
--   "reprioritize", the actor, 1 job, detail the new priority) when changed;
--   dead (detail "damaged") for a damaged record.

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/queue.lua
--@include lib/signals.lua

events_init(tonumber(ARGV[1]))
local id = ARGV[2]
local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id))
if damaged then return REPRIORITIZE_NOT_WAITING end
if not f then return REPRIORITIZE_NO_JOB end
local st = f[F_STATE]
if st ~= 'R' and st ~= 'D' and st ~= 'F' then return REPRIORITIZE_NOT_WAITING end
f[F_PRIORITY] = ARGV[3]
f[F_INPUTS] = ARGV[4]
if st == 'R' then
  redis.call('ZADD', K_READY, ready_score(f), rec_member(f, id))
end
redis.call('HSET', K_JOBS, id, rec_encode(f))
emit('reprioritized', id, ARGV[3])
audit('reprioritize', ARGV[5], 1, id, ARGV[3])
return REPRIORITIZE_CHANGED
