-- lib/replies.lua -- library: the lease reply cache, one per queue (not run on its own).
--
-- KEYS: none fixed; the caller passes the queue's two reply-cache keys
-- (scheduler/backend/keys.py): P:{Q}:lreqs (HASH request id -> cached
-- reply) and P:{Q}:lreqx (ZSET request id scored by the entry's expiry, ms).
-- ARGV: none of its own. Includes: none.
--
-- Why one hash, not one key per request: on a Redis Cluster a queue's slot
-- migrates key by key and its scripts get TRYAGAIN until every key they
-- name has moved; a key per lease request of the last minute made that
-- hundreds of keys (docs/design.md, "Redis Cluster"). With the hash and its
-- expiry index a queue's key set is constant. Expired entries are deleted
-- at most `limit` per call by the lease script, which adds at most one per
-- call, so the backlog never grows; an expired entry not yet deleted is
-- never answered (its expiry is checked on read).

-- The cached reply of request `req` (text), or nil if none or expired.
local function reply_cache_get(hash, index, req, now)
  local cached = redis.call('HGET', hash, req)
  if not cached then return nil end
  local expiry = tonumber(redis.call('ZSCORE', index, req))
  if not expiry or expiry <= now then return nil end
  return cached
end

-- Cache `reply` (text) for request `req` until now + ttl_ms.
local function reply_cache_put(hash, index, req, reply, now, ttl_ms)
  redis.call('HSET', hash, req, reply)
  redis.call('ZADD', index, now + ttl_ms, req)
end

-- Delete up to `limit` entries whose expiry passed.
local function reply_cache_prune(hash, index, now, limit)
  local due = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, limit)
  if #due > 0 then
    redis.call('HDEL', hash, unpack(due))
    redis.call('ZREM', index, unpack(due))
  end
end
