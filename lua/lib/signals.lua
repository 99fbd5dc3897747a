-- lib/signals.lua -- library: what scripts tell the outside -- events, pub/sub,
-- wake markers, counters (not run on its own).
--
-- KEYS: writes events (KEYS[9]), wake (KEYS[8]), stats (KEYS[10]); publishes
-- on the queue's "finished" channel (lib/keys.lua). ARGV: none of its own.
--@include lib/keys.lua
--@include lib/util.lua

-- Events: one stream entry per call and event kind: "e" = event name, "j" =
-- job ids joined by ",", optional "d" = details joined by "," (ids and
-- details never contain ","). scheduler/admin/events.py expands entries
-- into events. Off (0) until the script calls events_init with its ARGV
-- maximum stream length: a library sets no global, and a script that never
-- calls events_init writes no events.
local EVENTS_MAXLEN = 0
local function events_init(maxlen)
  EVENTS_MAXLEN = maxlen or 0
end

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

-- Add n to counter `field` of the stats hash; a damaged counter (not an
-- integer) starts again from n instead of failing the call after its writes.
local function count(field, n)
  if n ~= 0 and type(redis.pcall('HINCRBY', K_STATS, field, n)) ~= 'number' then
    redis.call('HSET', K_STATS, field, n)
  end
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
