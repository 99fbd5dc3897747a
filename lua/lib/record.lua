-- lib/record.lua -- library included by queue scripts (not run on its own).
--
-- KEYS: uses the standard queue KEYS named in lib/keys.lua (include it and
-- lib/util.lua first).
-- ARGV: none of its own.
--
-- Job record codec and shared state transitions. A job record is one string
-- in the jobs HASH: 16 fields joined by "\31" (ASCII unit separator), see
-- scheduler/record.py for the field list. Every field but the last is free
-- of "\31" by construction (validated names, digits, or JSON text, in which
-- control characters are always escaped); the payload is the final field.
--
-- Times are integer milliseconds since the Unix epoch, from the server clock.
-- Numbers that become scores are passed to redis.call as Lua numbers (Redis
-- converts them with 17 significant digits), never built with '..' or cjson.
--
-- Cost model: each redis.call costs a few microseconds, so hot paths work in
-- batches -- one HMGET / HSET / ZADD / XADD / PUBLISH per call, not per job.

local SEP = '\31'
local NF = 16
local F_VER, F_ST, F_AT, F_SEQ, F_TK, F_WK, F_ENQ, F_RDY, F_FIN, F_PRI, F_PIN, F_OPT, F_TASK, F_OUT, F_META, F_PAY =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
-- Sequence numbers are written as SEQ_DIGITS digits of base 62 in ASCII
-- order (0-9 A-Z a-z), so byte order is numeric order; 62^9 > 2^53, the
-- largest integer a Lua number holds exactly, so the width never overflows.
local SEQ_DIGITS = 9
local B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
-- One string.match splits a record (much cheaper than a find/sub loop).
local REC_PATTERN = '^' .. string.rep('([^\31]*)\31', NF - 1) .. '(.*)$'

-- Decode a record into a table of NF strings; nil if malformed.
local function rec_decode(s)
  local f = {string.match(s, REC_PATTERN)}
  if #f ~= NF then return nil end
  return f
end

local function rec_encode(f)
  return table.concat(f, SEP, 1, NF)
end

-- Options field: "max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms" (dead ttl -1 = keep).
local function rec_options(f)
  local ma, lease, rttl, dttl = string.match(f[F_OPT], '^(%d+),(%d+),(%d+),(%-?%d+)$')
  return tonumber(ma), tonumber(lease), tonumber(rttl), tonumber(dttl)
end

local function rec_member(f, id)
  return f[F_SEQ] .. ':' .. id
end

local function member_id(member)
  return string.sub(member, SEQ_DIGITS + 2)
end

local function format_seq(n)
  local out = {}
  for i = SEQ_DIGITS, 1, -1 do
    local d = n % 62
    out[i] = string.sub(B62, d + 1, d + 1)
    n = (n - d) / 62
  end
  return table.concat(out)
end

-- Reserve `n` numbers of the queue's sequence (ready-set order and fencing
-- tokens); returns the first. One call for a whole batch.
local function next_seqs(n)
  return redis.call('HINCRBY', K_META, 'seq', n) - n + 1
end

local function next_seq()
  return next_seqs(1)
end

-- The queue's settings in one read: paused (boolean), aging (number >= 0).
local function queue_meta()
  local m = redis.call('HMGET', K_META, 'paused', 'aging')
  return m[1] == '1', tonumber(m[2] or '0') or 0
end

local function queue_aging()
  local _, aging = queue_meta()
  return aging
end

-- When the job became (or becomes) ready, ms: the ready field, or the
-- enqueue time when it is "" (a job ready at enqueue; saves 13 bytes).
local function ready_ms(f)
  local r = f[F_RDY]
  if r == '' then r = f[F_ENQ] end
  return tonumber(r)
end

-- Ready score; mirrors scheduler/priority.py ready_score exactly.
local function ready_score(aging, f)
  local p = tonumber(f[F_PRI])
  if aging == 0 then return -p end
  return aging * (ready_ms(f) / 1000) - p
end

-- Run one variadic write command over many arguments: `head` is the fixed
-- start (e.g. {'ZADD', key}), `args` the rest (pairs or singles), sent in
-- chunks of at most 1000 values (unpack fails past ~8000; 1000 keeps pairs
-- aligned). Replies are discarded.
local function call_many(head, args)
  local n = #args
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
  local out = {}
  local n = #ids
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    local reply = redis.call('HMGET', key, unpack(ids, i, j))
    for k = 1, j - i + 1 do out[i + k - 1] = reply[k] end
    i = j + 1
  end
  return out
end

-- Events: ARGV-provided maximum stream length; 0 disables events. One
-- stream entry per call and event kind: "e" = event name, "j" = job ids
-- joined by ",", optional "d" = details joined by "," (ids and details never
-- contain ","). scheduler/admin/events.py expands entries into events.
local EVENTS_MAXLEN = 0
local function emit_many(name, ids, details)
  if EVENTS_MAXLEN > 0 and #ids > 0 then
    if details then
      redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', name,
                 'j', table.concat(ids, ','), 'd', table.concat(details, ','))
    else
      redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', name,
                 'j', table.concat(ids, ','))
    end
  end
end

local function emit(name, id, detail)
  emit_many(name, {id}, detail and {detail} or nil)
end

-- Announce jobs that reached a final state (one message: ids joined by ",").
local function publish_finished(ids)
  if #ids > 0 then
    redis.call('PUBLISH', FINISHED_CHANNEL, table.concat(ids, ','))
  end
end

-- Wake one idle worker unless a marker is already waiting.
local function wake()
  if redis.call('LLEN', K_WAKE) == 0 then
    redis.call('LPUSH', K_WAKE, '1')
  end
end

local function count(field, n)
  if n ~= 0 then redis.call('HINCRBY', K_STATS, field, n) end
end

-- Per-second buckets "r:<second>" of finished attempts, for "jobs/s over the
-- last minute". When the second rolls over, buckets older than 120 s go.
local function bump_rate(now, n)
  if n == 0 then return end
  local sec = math.floor(now / 1000)
  redis.call('HINCRBY', K_STATS, 'r:' .. int(sec), n)
  local last = tonumber(redis.call('HGET', K_STATS, 'rsec') or '0')
  if last ~= sec then
    redis.call('HSET', K_STATS, 'rsec', int(sec))
    local fields = redis.call('HKEYS', K_STATS)
    for _, name in ipairs(fields) do
      if string.sub(name, 1, 2) == 'r:' and tonumber(string.sub(name, 3)) < sec - 120 then
        redis.call('HDEL', K_STATS, name)
      end
    end
  end
end

-- ZREM many members in chunks.
local function zrem_all(key, members)
  call_many({'ZREM', key}, members)
end

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

-- Put a job (record table f, state already not ready) into the ready set.
local function to_ready(f, id, aging)
  f[F_ST] = 'R'
  redis.call('ZADD', K_READY, ready_score(aging, f), rec_member(f, id))
end

-- Final state "dead": keep the record with its reason for dead_ttl.
local function to_dead(f, id, now, outcome)
  local _, _, _, dttl = rec_options(f)
  f[F_ST] = 'X'
  f[F_FIN] = int(now)
  f[F_OUT] = outcome
  local expires = math.huge
  if dttl >= 0 then expires = now + dttl end
  redis.call('ZADD', K_DEAD, expires, id)
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  count('dead', 1)
  emit('dead', id)
  publish_finished({id})
end

-- Final state "succeeded" or "cancelled": keep the record for result_ttl.
local function to_done(f, id, now, state, outcome)
  local _, _, rttl = rec_options(f)
  f[F_ST] = state
  f[F_FIN] = int(now)
  f[F_OUT] = outcome
  redis.call('ZADD', K_DONE, now + rttl, id)
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  publish_finished({id})
end

-- Remove a pending (ready/delayed/failed/leased) job from whichever set holds it.
local function unindex(f, id)
  local st = f[F_ST]
  if st == 'R' then
    redis.call('ZREM', K_READY, rec_member(f, id))
  elseif st == 'D' or st == 'F' then
    redis.call('ZREM', K_DELAYED, rec_member(f, id))
  elseif st == 'L' then
    redis.call('ZREM', K_LEASED, id)
  end
end

local function is_pending(st)
  return st == 'R' or st == 'D' or st == 'F' or st == 'L'
end
