-- complete.lua -- record the success of many leased jobs in one call.
--
-- For each job whose lease the caller still holds: state succeeded, result
-- stored, lease removed, record kept until finished + result_ttl (then
-- deleted by a later call's bounded expiry pass), id published on the
-- "finished" channel. A stale token is refused and nothing is recorded.
-- Idempotent: repeating a call that already succeeded reports 2.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, leased, done, events, stats.
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  expiry batch: max expired finished/dead records deleted per set
-- ARGV[3]  N, number of jobs (integer >= 0)
-- then N triples: job id, lease token, result (JSON text)
-- Returns: an array of N integers: 1 = recorded, 2 = already recorded by an
--   earlier run of this call, 0 = stale lease (refused), -1 = job gone.
-- Errors: "ERR scheduler: bad argument count".

--@include lib/keys.lua
--@include lib/record.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local expire_batch = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
if not (n and expire_batch) or #ARGV ~= 3 + 3 * n then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local out = {}
local done = 0
for i = 0, n - 1 do
  local b = 4 + 3 * i
  local id, token = ARGV[b], ARGV[b + 1]
  local rec = redis.call('HGET', K_JOBS, id)
  local f = rec and rec_decode(rec)
  if not f then
    out[i + 1] = -1
  elseif f[F_TK] ~= token then
    out[i + 1] = 0
  elseif f[F_ST] == 'S' then
    out[i + 1] = 2
  elseif f[F_ST] ~= 'L' then
    out[i + 1] = 0
  else
    redis.call('ZREM', K_LEASED, id)
    to_done(f, id, now, 'S', ARGV[b + 2])
    emit('succeeded', id)
    out[i + 1] = 1
    done = done + 1
  end
end
count('succeeded', done)
bump_rate(now, done)
expire_finished(now, expire_batch)
return out
