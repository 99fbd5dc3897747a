-- lib/batch.lua -- library: one redis.call for many values (not run on its own).
--
-- KEYS: none of its own (callers pass keys). ARGV: none. Includes: none.
--
-- Cost model: each redis.call costs a few microseconds, so hot paths work in
-- batches -- one HMGET / HSET / ZADD / ZREM per call, not per job. Commands
-- are sent in chunks of at most 1000 values (unpack fails past ~8000).

-- Run one variadic write command over many arguments: `head` is the fixed
-- start (e.g. {'ZADD', key}), `args` the rest (pairs or singles; 1000 keeps
-- pairs aligned). Replies are discarded.
local function call_many(head, args)
  local n = #args
  if n == 0 then return end
  if n <= 1000 and #head == 2 then -- the common case: one call, no copy
    redis.call(head[1], head[2], unpack(args))
    return
  end
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    local cmd = {unpack(head)}
    for k = i, j do cmd[#cmd + 1] = args[k] end
    redis.call(unpack(cmd))
    i = j + 1
  end
end

-- HMGET of many fields; returns a table indexed like `ids` (false = missing).
local function hmget_many(key, ids)
  local n = #ids
  if n == 0 then return {} end
  if n <= 1000 then return redis.call('HMGET', key, unpack(ids)) end
  local out = {}
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    local reply = redis.call('HMGET', key, unpack(ids, i, j))
    for k = 1, j - i + 1 do out[i + k - 1] = reply[k] end
    i = j + 1
  end
  return out
end

-- ZREM many members in chunks.
local function zrem_all(key, members)
  call_many({'ZREM', key}, members)
end
