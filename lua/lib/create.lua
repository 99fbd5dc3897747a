-- lib/create.lua -- library included by enqueue.lua and cron scripts (not run on its own).
--
-- KEYS: uses the standard queue KEYS named in lib/keys.lua (include it and
-- lib/record.lua first): writes jobs, ready or delayed, meta (seq), events.
-- ARGV: none of its own.

-- Create job `id` unless it exists. Fields are strings as in enqueue.lua's
-- ARGV; `due` is the ETA in ms (Lua number; <= now means ready at once).
-- `aging` is the queue's aging rate (queue_aging()). Does not wake workers
-- (callers wake once per call). Returns 'R' (ready), 'D' (delayed) or
-- false (the id already existed; nothing written).
local function create_job(id, task, payload, priority, inputs, options, meta, due, now, aging)
  if redis.call('HEXISTS', K_JOBS, id) == 1 then return false end
  local f = {'1', 'R', '0', format_seq(next_seq()), '', '', int(now), int(now), '',
             priority, inputs, options, task, '', meta, payload}
  if due > now then
    f[F_ST] = 'D'
    f[F_RDY] = int(due)
    redis.call('ZADD', K_DELAYED, due, rec_member(f, id))
  else
    to_ready(f, id, aging)
  end
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  emit('enqueued', id)
  return f[F_ST]
end
