-- lib/queue.lua -- library: a queue's settings and sequence (not run on its own).
--
-- KEYS: reads/writes meta (KEYS[7], lib/keys.lua). ARGV: none.
--@include lib/keys.lua

-- Reserve `n` numbers of the queue's sequence (ready-set order and fencing
-- tokens); returns the first. One call for a whole batch.
local function next_seqs(n)
  return redis.call('HINCRBY', K_META, 'seq', n) - n + 1
end

local function next_seq()
  return next_seqs(1)
end

-- The queue's settings in one read: paused (boolean) and its aging clock
-- {rate, since, at} (lib/record.lua clock_at): meta fields "aging" (rate,
-- priority units per second), "aging_since" (ms) and "aging_at" (A at
-- aging_since, %.17g text). A queue that never aged has the clock {0, 0, 0}.
local function queue_meta()
  local m = redis.call('HMGET', K_META, 'paused', 'aging', 'aging_since', 'aging_at')
  return m[1] == '1',
    {tonumber(m[2] or '0') or 0, tonumber(m[3] or '0') or 0, tonumber(m[4] or '0') or 0}
end

local function queue_clock()
  local _, clock = queue_meta()
  return clock
end
