-- lib/expiry.lua -- library: deleting finished records whose retention passed (not run on its own).
--
-- KEYS: writes jobs, done, dead (lib/keys.lua). ARGV: none of its own.
--@include lib/keys.lua

-- Delete finished and dead records whose retention expired (at most `limit`
-- of each per call, so no script blocks Redis for long).
local function expire_finished(now, limit)
  for _, key in ipairs({K_DONE, K_DEAD}) do
    local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, limit)
    if #ids > 0 then
      redis.call('HDEL', K_JOBS, unpack(ids))
      redis.call('ZREM', key, unpack(ids))
    end
  end
end
