-- complete.lua -- record the success of many leased jobs in one call.
--
-- For each job whose lease the caller still holds: state succeeded, result
-- stored, lease removed, record kept until finished + result_ttl (then
-- deleted by a later call's bounded expiry pass), id published on the
-- "finished" channel. A stale token is refused and nothing is recorded.
-- Idempotent: repeating a call that already succeeded reports
-- COMPLETE_ALREADY_RECORDED.
--
-- Learned run times: each recorded job whose start was recorded (F_STARTED_MS,
-- lua/start.lua) adds its duration -- now minus started_ms, both on the
-- server clock, whole ms -- to its task's statistics (lib/stats.lua), in
-- this same atomic call (a job whose start this call also stamps -- see
-- ARGV -- finished within about one round trip of its start: its run time
-- counts as 0 whole ms). Only successes count (a failure's run time says
-- little about a success's). When the queue has limits (KEYS[12] exists),
-- an idle worker is woken: a concurrency slot just freed up.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua); this script writes
--   jobs, leased, done, events, stats, wake.
-- KEYS[11] P:{Q}:taskstats HASH  run-time statistics (written)
-- KEYS[12] P:{Q}:limits    HASH  limits (only checked for existence)
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  expiry batch: expired finished/dead records deleted per set:
--          at most max(this, 2 * N) (lib/expiry.lua)
-- ARGV[3]  N, number of jobs (integer >= 0)
-- then N triples: job id, lease token, result (JSON text)
-- then, optionally: M (integer >= 0) and M pairs: job id, lease token --
--          leases the worker started since its last round trip: stamped
--          started first, exactly as start.lua does (lib/starts.lua), so
--          the round trip needs no start call; a job both started and
--          finished here is read and written once. Their START_* codes are
--          not returned (a lost lease is found by the heartbeat too).
-- Returns: an array of N integers (lib/codes.lua COMPLETE_*):
--   COMPLETE_RECORDED, COMPLETE_ALREADY_RECORDED (by an earlier run of this
--   call), COMPLETE_STALE (lease lost: refused; also when the record was
--   damaged -- it goes dead, lib/quarantine.lua), COMPLETE_GONE (no such job).
-- Errors: "ERR scheduler: bad argument count".
-- Events: succeeded (one entry for the call's recorded jobs); dead (detail
--   "damaged") for a damaged record.

--@include lib/batch.lua
--@include lib/record.lua
--@include lib/codes.lua
--@include lib/expiry.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/signals.lua
--@include lib/starts.lua
--@include lib/stats.lua
--@include lib/transitions.lua
--@include lib/util.lua

events_init(tonumber(ARGV[1]))
local expire_batch = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local m = 0
if n and #ARGV > 3 + 3 * n then m = tonumber(ARGV[4 + 3 * n]) end
if not (n and expire_batch and m)
    or #ARGV ~= 3 + 3 * n + (#ARGV > 3 + 3 * n and 1 + 2 * m or 0) then
  return redis.error_reply('ERR scheduler: bad argument count')
end
local now = now_ms()
local now_text = int(now)
-- The starts carried by this call (see ARGV), before any outcome.
local s_ids, s_tokens = {}, {}
for i = 0, m - 1 do
  s_ids[i + 1] = ARGV[5 + 3 * n + 2 * i]
  s_tokens[i + 1] = ARGV[6 + 3 * n + 2 * i]
end
local _, started, stamped = stamp_starts(s_ids, s_tokens, now, function(id, raw)
  return checked_record(id, raw, now)
end)
-- Read the records the starts did not read already.
local ids, unread, at = {}, {}, {}
for i = 0, n - 1 do
  local id = ARGV[4 + 3 * i]
  ids[i + 1] = id
  if not started[id] then
    unread[#unread + 1] = id
    at[i + 1] = #unread
  end
end
local raw = hmget_many(K_JOBS, unread)
local out, seen = {}, {}
local hset, zdone, finished, run_tasks, run_ms = {}, {}, {}, {}, {}
for i = 1, n do
  local b = 4 + 3 * (i - 1)
  local id = ids[i]
  local f, damaged = started[id], false
  if not f then f, damaged = checked_record(id, raw[at[i]], now) end
  local status = f and lease_status(f, ARGV[b + 1])
  if damaged then
    out[i] = COMPLETE_STALE
  elseif not f then
    out[i] = COMPLETE_GONE
  elseif status == 'succeeded' or (status == 'held' and seen[id]) then
    out[i] = COMPLETE_ALREADY_RECORDED
  elseif status ~= 'held' then
    out[i] = COMPLETE_STALE
  else
    seen[id] = true
    local _, _, rttl = rec_options(f)
    f[F_STATE] = 'S'
    f[F_FINISHED_MS] = now_text
    f[F_OUTCOME] = ARGV[b + 2]
    hset[#hset + 1] = id
    hset[#hset + 1] = rec_encode(f)
    zdone[#zdone + 1] = now + rttl
    zdone[#zdone + 1] = id
    finished[#finished + 1] = id
    if f[F_STARTED_MS] ~= '' then
      run_tasks[#run_tasks + 1] = f[F_TASK]
      run_ms[#run_ms + 1] = math.max(0, now - tonumber(f[F_STARTED_MS]))
    end
    out[i] = COMPLETE_RECORDED
  end
end
for _, id in ipairs(stamped) do
  if not seen[id] then  -- started and still running: write the stamp
    hset[#hset + 1] = id
    hset[#hset + 1] = rec_encode(started[id])
  end
end
call_many({'HSET', K_JOBS}, hset)
if #finished > 0 then
  zrem_all(K_LEASED, finished)
  call_many({'ZADD', K_DONE}, zdone)
  publish_finished(finished)
  emit_many('succeeded', finished)
  count('succeeded', #finished)
  bump_rate(now, #finished)
  stats_record(run_tasks, run_ms, now)
  if redis.call('EXISTS', K_LIMITS) == 1 then wake() end
end
-- Bounded growth: delete at least twice as many expired records as this
-- call finished, so deletion outpaces completion (lib/expiry.lua).
expire_finished(now, math.max(expire_batch, 2 * n))
return out
