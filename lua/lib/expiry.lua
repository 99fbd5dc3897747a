-- lib/expiry.lua -- library: deleting finished records whose retention passed (not run on its own).
--
-- KEYS: writes jobs, done, dead (lib/keys.lua). ARGV: none of its own.
--@include lib/batch.lua
--@include lib/keys.lua
--
-- Bounded growth (docs/design.md): succeeded, cancelled and dead records
-- are deleted by the calls workers make anyway, `limit` per set and call:
--   * complete.lua deletes up to max(limit, 2 * jobs it completes), so on
--     a busy queue deletion outpaces completion whatever the rate;
--   * lease.lua, when it finds fewer jobs than asked (an idle worker),
--     deletes up to `limit`, answers wake 0 while more are already due (the
--     worker calls again at once: a backlog is cleared `limit` per round
--     trip), and otherwise asks to be called again when the next record
--     expires, but not sooner than EXPIRY_SLACK_MS (next_expiry_in).
-- So with a worker on the queue a record outlives its retention by at most
-- EXPIRY_SLACK_MS plus the round trips its backlog needs, busy or idle.

-- Idle workers wake for expiry no more often than this (ms): the bound on
-- how late a record is deleted on an idle queue.
local EXPIRY_SLACK_MS = 1000

-- Delete finished and dead records whose retention expired: at most `limit`
-- of each set. Returns true if a set may hold more that are due (the batch
-- was full): the caller should come back at once.
local function expire_finished(now, limit)
  local behind = false
  for _, key in ipairs({K_DONE, K_DEAD}) do
    local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, limit)
    if #ids > 0 then
      call_many({'HDEL', K_JOBS}, ids)
      zrem_all(key, ids)
      if #ids >= limit then behind = true end
    end
  end
  return behind
end

-- Milliseconds until the next finished or dead record expires, but at
-- least EXPIRY_SLACK_MS; -1 if none will.
local function next_expiry_in(now)
  local best = -1
  for _, key in ipairs({K_DONE, K_DEAD}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local at = first[2] and tonumber(first[2])
    if at and at < math.huge then
      local wait = math.max(EXPIRY_SLACK_MS, at - now)
      if best < 0 or wait < best then best = wait end
    end
  end
  return best
end
