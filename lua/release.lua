-- release.lua -- give leased jobs back without losing an attempt.
--
-- Used on graceful shutdown: each job whose lease the caller still holds
-- returns to the ready set in its old place (same member and ready time),
-- and its attempt counter goes back down by one. Idempotent: repeating an
-- applied call reports 2.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, leased, ready, wake, events.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, number of jobs (integer >= 0)
-- then N pairs: job id, lease token
-- Returns: an array of N integers: 1 = released, 2 = already released by an
--   earlier run of this call, 0 = stale lease, -1 = job gone.
-- Errors: "ERR scheduler: bad argument count".

--@include lib/util.lua
--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
if not n or #ARGV ~= 2 + 2 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local aging = queue_aging()
local out = {}
local released = 0
for i = 0, n - 1 do
  local id, token = ARGV[3 + 2 * i], ARGV[4 + 2 * i]
  local rec = redis.call('HGET', K_JOBS, id)
  local f = rec and rec_decode(rec)
  if not f then
    out[i + 1] = -1
  elseif f[F_TK] ~= token then
    out[i + 1] = 0
  elseif f[F_ST] == 'R' and f[F_WK] == '' then
    out[i + 1] = 2
  elseif f[F_ST] ~= 'L' then
    out[i + 1] = 0
  else
    redis.call('ZREM', K_LEASED, id)
    f[F_AT] = int(math.max(0, tonumber(f[F_AT]) - 1))
    f[F_WK] = ''
    to_ready(f, id, aging)
    redis.call('HSET', K_JOBS, id, rec_encode(f))
    emit('released', id)
    released = released + 1
    out[i + 1] = 1
  end
end
if released > 0 then wake() end
return out
