-- progress.lua -- store a running job's progress, fenced by its lease.
--
-- The holder of a job's lease (state leased, same token) writes its progress
-- into the queue's progress hash: field = job id, value = a JSON object
-- {"v": value or null, "m": message, "t": worker time ms} built by the caller
-- (ARGV[4]). Kept bounded and cheap: each call also looks at up to 2 random
-- other entries (HRANDFIELD) and deletes those whose job is no longer leased
-- (finished, retried, gone), and the hash expires ARGV[5] ms after the last
-- write, so progress of finished jobs does not accumulate. A repeated call
-- writes the same entry again (idempotent in effect).
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script reads
--   jobs and writes events.
-- KEYS[11..12]: taskstats, limits (scheduler/backend/keys.py EXTENDED_KEY_NAMES; unused).
-- KEYS[13]: P:{Q}:progress HASH job id -> progress JSON (K_PROGRESS).
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  job id
-- ARGV[3]  lease token
-- ARGV[4]  progress JSON text (as stored; at most a few hundred bytes)
-- ARGV[5]  lifetime of the hash after this write, ms (integer >= 1)
-- Returns: a lib/codes.lua PROGRESS_* code: PROGRESS_STORED, PROGRESS_LOST
--   (the lease is not held: expired, reported, cancelled, leased again;
--   nothing written), PROGRESS_GONE (no such job).
--   A damaged record goes dead (lib/quarantine.lua) and answers PROGRESS_LOST.
-- Errors: "ERR scheduler: bad argument count".
-- Events: progress (detail: the progress JSON) when stored; dead (detail
--   "damaged") for a damaged record.

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua

if #ARGV ~= 5 or #KEYS ~= 13 then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local K_PROGRESS = KEYS[13]
events_init(tonumber(ARGV[1]))
local id = ARGV[2]
local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id))
if damaged then return PROGRESS_LOST end
if not f then return PROGRESS_GONE end
if lease_status(f, ARGV[3]) ~= 'held' then return PROGRESS_LOST end
-- Sweep: up to 2 other entries whose job no longer runs. (A missing hash
-- answers an empty array; fakeredis, used by scheduler.testing, answers nil.)
local others = redis.call('HRANDFIELD', K_PROGRESS, 2) or {}
for _, other in ipairs(others) do
  if other ~= id then
    local rec = redis.call('HGET', K_JOBS, other)
    local at = #REC_VERSION + #REC_SEP + 1  -- the state letter (lib/record.lua layout)
    if not rec or string.sub(rec, at, at) ~= 'L' then
      redis.call('HDEL', K_PROGRESS, other)
    end
  end
end
redis.call('HSET', K_PROGRESS, id, ARGV[4])
redis.call('PEXPIRE', K_PROGRESS, tonumber(ARGV[5]))
emit('progress', id, ARGV[4])
return PROGRESS_STORED
