-- lib/create.lua -- library: new job records, and creating one job (not run on its own).
--
-- KEYS: writes jobs, ready or delayed, meta (seq), events (lib/keys.lua).
-- ARGV: none of its own. Events: create_job writes "enqueued".
--@include lib/record.lua
--@include lib/keys.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/util.lua

-- The record table of a new job (nothing written). Fields are strings as in
-- enqueue.lua's ARGV; `seq` its sequence number; `due` its ETA in ms (Lua
-- number; <= now means ready at once). One positional constructor (the
-- cheapest table to build); each line names its field, in the order of
-- lib/record.lua (tests/test_record_layout.py checks it).
local function new_record(seq, task, payload, priority, inputs, options, meta, due, now)
  local f = {
    REC_VERSION,     -- F_VERSION
    'R',             -- F_STATE
    '0',             -- F_ATTEMPTS
    format_seq(seq), -- F_SEQ
    '',              -- F_TOKEN
    '',              -- F_WORKER
    int(now),        -- F_ENQUEUED_MS
    '',              -- F_READY_MS
    '',              -- F_FINISHED_MS
    '',              -- F_STARTED_MS
    priority,        -- F_PRIORITY
    inputs,          -- F_INPUTS
    options,         -- F_OPTIONS
    task,            -- F_TASK
    '',              -- F_OUTCOME
    meta,            -- F_META
    '',              -- F_AGED (rec_stamp sets it when the job becomes ready)
    payload,         -- F_PAYLOAD
  }
  if due > now then
    f[F_STATE] = 'D'
    f[F_READY_MS] = int(due)
  end
  return f
end

-- Create job `id` unless it exists (single-job path, used by cron_fire.lua;
-- enqueue.lua does the same for a batch with one write per set). `aging` is
-- the queue's aging clock (lib/queue.lua). Does not wake workers (callers wake once per
-- call). Returns 'R' (ready), 'D' (delayed) or false (the id already existed;
-- nothing written).
local function create_job(id, task, payload, priority, inputs, options, meta, due, now, clock)
  if redis.call('HEXISTS', K_JOBS, id) == 1 then return false end
  local f = new_record(next_seq(), task, payload, priority, inputs, options, meta, due, now)
  if f[F_STATE] == 'D' then
    redis.call('ZADD', K_DELAYED, due, rec_member(f, id))
  else
    rec_stamp(f, clock)
    redis.call('ZADD', K_READY, ready_score(f), rec_member(f, id))
  end
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  emit('enqueued', id)
  return f[F_STATE]
end
