-- lib/create.lua -- library included by enqueue.lua and cron scripts (not run on its own).
--
-- KEYS: uses the standard queue KEYS named in lib/keys.lua (include it and
-- lib/record.lua first): writes jobs, ready or delayed, meta (seq), events.
-- ARGV: none of its own.

-- The record table of a new job (nothing written). Fields are strings as in
-- enqueue.lua's ARGV; `seq` its sequence number; `due` its ETA in ms (Lua
-- number; <= now means ready at once).
local function new_record(seq, task, payload, priority, inputs, options, meta, due, now)
  local f = {'1', 'R', '0', format_seq(seq), '', '', int(now), '', '',
             priority, inputs, options, task, '', meta, payload}
  if due > now then
    f[F_ST] = 'D'
    f[F_RDY] = int(due)
  end
  return f
end

-- Create job `id` unless it exists (single-job path, used by cron_fire.lua;
-- enqueue.lua does the same for a batch with one write per set). `aging` is
-- the queue's aging rate. Does not wake workers (callers wake once per
-- call). Returns 'R' (ready), 'D' (delayed) or false (the id already existed;
-- nothing written).
local function create_job(id, task, payload, priority, inputs, options, meta, due, now, aging)
  if redis.call('HEXISTS', K_JOBS, id) == 1 then return false end
  local f = new_record(next_seq(), task, payload, priority, inputs, options, meta, due, now)
  if f[F_ST] == 'D' then
    redis.call('ZADD', K_DELAYED, due, rec_member(f, id))
  else
    redis.call('ZADD', K_READY, ready_score(aging, f), rec_member(f, id))
  end
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  emit('enqueued', id)
  return f[F_ST]
end
