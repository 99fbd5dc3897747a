-- lib/queue.lua -- library: a queue's settings and sequence (not run on its own).
--
-- KEYS: reads/writes meta (KEYS[7]); stats (KEYS[10]) when it repairs the
-- sequence (lib/keys.lua). ARGV: none.
--@include lib/keys.lua
--@include lib/signals.lua
--@include lib/util.lua

-- Reserve `n` numbers of the queue's sequence (ready-set order and fencing
-- tokens); returns the first. One call for a whole batch.
-- A damaged sequence (not an integer, or past 2^53, the largest integer a
-- Lua number holds exactly) would make HINCRBY fail after the caller's
-- first writes (Redis does not roll them back). It is repaired instead: the
-- sequence continues from the server time in microseconds (about 1.8e15 in
-- 2026, below 2^53 until the year 2255), above any number a queue can have
-- used, and the queue's "damaged" counter goes up.
local SEQ_LIMIT = 9007199254740992
local function next_seqs(n)
  local last = redis.pcall('HINCRBY', K_META, 'seq', n)
  if type(last) ~= 'number' or last >= SEQ_LIMIT then
    local t = redis.call('TIME')
    last = tonumber(t[1]) * 1000000 + tonumber(t[2]) + n
    redis.call('HSET', K_META, 'seq', int(last))
    count('damaged', 1)
  end
  return last - n + 1
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
