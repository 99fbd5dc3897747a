-- release.lua -- give leased jobs back without losing an attempt.
--
-- Used on graceful shutdown: each job whose lease the caller still holds
-- returns to the ready set in its old place (same member and ready time),
-- and its attempt counter goes back down by one. Idempotent: repeating an
-- applied call reports RELEASE_ALREADY_RELEASED. A lease that expired
-- meanwhile (reaped by a lease call) was not given back: RELEASE_STALE.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, leased, ready, wake, events.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, number of jobs (integer >= 0)
-- then N pairs: job id, lease token
-- Returns: an array of N integers (lib/codes.lua RELEASE_*):
--   RELEASE_RELEASED, RELEASE_ALREADY_RELEASED (by an earlier run of this
--   call), RELEASE_STALE (lease lost), RELEASE_GONE (no such job).
--   A damaged record goes dead (lib/quarantine.lua) and answers RELEASE_STALE.
-- Errors: "ERR scheduler: bad argument count".
-- Events: released; dead (detail "damaged") for a damaged record.

--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/queue.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
local n = tonumber(ARGV[2])
if not n or #ARGV ~= 2 + 2 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local out = {}
local released = 0
for i = 0, n - 1 do
  local id, token = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local f, damaged = checked_record(id, redis.call('HGET', K_JOBS, id))
  local status = f and lease_status(f, token)
  if damaged then
    out[i + 1] = RELEASE_STALE
  elseif not f then
    out[i + 1] = RELEASE_GONE
  elseif status == 'released' then
    out[i + 1] = RELEASE_ALREADY_RELEASED
  elseif status ~= 'held' then
    out[i + 1] = RELEASE_STALE
  else
    redis.call('ZREM', K_LEASED, id)
    f[F_ATTEMPTS] = int(math.max(0, tonumber(f[F_ATTEMPTS]) - 1))
    f[F_WORKER] = ''
    to_ready(f, id)
    redis.call('HSET', K_JOBS, id, rec_encode(f))
    emit('released', id)
    released = released + 1
    out[i + 1] = RELEASE_RELEASED
  end
end
if released > 0 then wake() end
return out
