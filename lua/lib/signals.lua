-- lib/signals.lua -- library: what scripts tell the outside -- events, pub/sub,
-- wake markers, counters (not run on its own).
--
-- KEYS: writes events (KEYS[9]), wake (KEYS[8]), stats (KEYS[10]); reads
-- meta (KEYS[7]) and publishes on the queue's "finished" channel
-- (lib/keys.lua). ARGV: none of its own.
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

-- One job's event: emit_many(name, {id}, {detail}) without the tables.
local function emit(name, id, detail)
  if EVENTS_MAXLEN > 0 then
    if detail then
      redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', name, 'j', id, 'd', detail)
    else
      redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', name, 'j', id)
    end
  end
end

-- Audit: one stream entry per operator action that changed something, written
-- by the script that makes the change (so it is atomic with it): "e" =
-- "audit", "x" = action (retry, cancel, pause, purge, schedule_pause, ...),
-- "a" = actor (who, as given by the client), "n" = jobs touched, "j" =
-- targets joined by "," (job ids, a schedule id, or ""), "d" = detail ("" if
-- none; free text, never split). audit_to takes the stream key and its
-- maximum length (0 = no events) for scripts without the standard KEYS.
local function audit_to(key, maxlen, action, actor, n, targets, detail)
  if maxlen > 0 then
    redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'e', 'audit', 'x', action,
               'a', actor, 'n', int(n), 'j', targets or '', 'd', detail or '')
  end
end

local function audit(action, actor, n, targets, detail)
  audit_to(K_EVENTS, EVENTS_MAXLEN, action, actor, n, targets, detail)
end

-- Announce jobs that reached a final state (one message: ids joined by ",").
-- The queue's meta field "pubsub" chooses how: "sharded" = SPUBLISH (the
-- message stays on the queue's shard; set by the storage layer on a Redis
-- Cluster >= 7, scheduler/backend/core.py register_queue), anything else =
-- PUBLISH (a single server, Sentinel, Redis < 7, fakeredis; on a cluster a
-- PUBLISH is forwarded to every node). Subscribers read the same field.
local function publish_finished(ids)
  if #ids > 0 then
    local sharded = redis.call('HGET', K_META, 'pubsub') == 'sharded'
    redis.call(sharded and 'SPUBLISH' or 'PUBLISH', FINISHED_CHANNEL, table.concat(ids, ','))
  end
end

-- Wake one idle worker unless a marker is already waiting.
local function wake()
  if redis.call('LLEN', K_WAKE) == 0 then
    redis.call('LPUSH', K_WAKE, '1')
  end
end

-- Drop the markers left in the wake list when nothing of the queue is
-- ready, delayed or leased: a lease call they would cause finds nothing to
-- lease, promote or requeue. Typically the marker pushed by the lease of a
-- job that has finished since (the first lease of a quiet queue wakes an
-- idle worker to learn its deadline; docs/design.md, "Waiting without
-- polling"), which the leasing worker would otherwise take itself on its
-- next wait: one more round trip and lease call per job. Called by a lease
-- call about to idle (it has just looked; nothing was left due).
local function drop_stale_wake()
  if redis.call('LLEN', K_WAKE) > 0 and redis.call('ZCARD', K_READY) == 0
      and redis.call('ZCARD', K_DELAYED) == 0 and redis.call('ZCARD', K_LEASED) == 0 then
    redis.call('DEL', K_WAKE)
  end
end

-- Add n to counter `field` of the stats hash; a damaged counter (not an
-- integer) starts again from n instead of failing the call after its writes.
local function count(field, n)
  if n ~= 0 and type(redis.pcall('HINCRBY', K_STATS, field, n)) ~= 'number' then
    redis.call('HSET', K_STATS, field, n)
  end
end

-- Per-second buckets "r:<second>" of finished attempts, and "f:<second>" of
-- the failed ones among them (optional `failed`), for "jobs/s" and "failure
-- rate over the last minute". When the second rolls over, buckets older than
-- 120 s go.
local function bump_rate(now, n, failed)
  if n == 0 then return end
  local sec = math.floor(now / 1000)
  redis.call('HINCRBY', K_STATS, 'r:' .. int(sec), n)
  if failed and failed > 0 then
    redis.call('HINCRBY', K_STATS, 'f:' .. int(sec), failed)
  end
  local last = tonumber(redis.call('HGET', K_STATS, 'rsec') or '0')
  if last ~= sec then
    redis.call('HSET', K_STATS, 'rsec', int(sec))
    local fields = redis.call('HKEYS', K_STATS)
    for _, name in ipairs(fields) do
      local kind = string.sub(name, 1, 2)
      if (kind == 'r:' or kind == 'f:') and (tonumber(string.sub(name, 3)) or 0) < sec - 120 then
        redis.call('HDEL', K_STATS, name)
      end
    end
  end
end
