-- lib/transitions.lua -- library: shared job state transitions and the one
-- lease check (not run on its own).
--
-- KEYS: writes jobs, ready, delayed, leased, dead, done (lib/keys.lua).
-- ARGV: none of its own. Events: to_dead writes "dead" (lib/signals.lua).
--@include lib/batch.lua
--@include lib/record.lua
--@include lib/keys.lua
--@include lib/signals.lua
--@include lib/util.lua

-- What became of the lease a caller holds with `token`, read from record f
-- (complete, fail, release and heartbeat all decide with this one check):
--   'held'       still held (state leased, same token)
--   'succeeded'  the holder reported success (complete.lua)
--   'retrying'   the holder reported a failure and a retry is scheduled
--                (state failed, or ready after promotion or run_now)
--   'dead'       the holder reported a failure and the job went dead
--   'released'   the holder gave it back (release.lua)
--   'stale'      anything else: leased again since, or the lease ended
--                without its holder (expired, cancelled, operator retry)
-- The worker field tells the holder's own ends (complete and fail keep it)
-- from the others (release and end_lease clear it); end_lease also clears
-- the token, so a late call with it is stale whatever the state.
local function lease_status(f, token)
  if token == '' or f[F_TOKEN] ~= token then return 'stale' end
  local st = f[F_STATE]
  if st == 'L' then return 'held' end
  if f[F_WORKER] == '' then
    if st == 'R' then return 'released' end
    return 'stale'
  end
  if st == 'S' then return 'succeeded' end
  if st == 'X' then return 'dead' end
  if st == 'F' or st == 'R' then return 'retrying' end
  return 'stale'
end

-- Renew leases the caller found held (lease_status 'held'), as a heartbeat
-- does: each deadline in the leased set becomes `now` + the job's lease
-- duration (its options), in one ZADD XX. `ids` and `fs` (record tables)
-- are indexed alike. Returns the new deadlines (ms), indexed like `ids`.
-- Used by heartbeat.lua and by lease.lua for a repeated request.
local function renew_leases(ids, fs, now)
  local zadd, deadlines = {}, {}
  for i, id in ipairs(ids) do
    local _, lease_ms = rec_options(fs[i])
    deadlines[i] = now + lease_ms
    zadd[#zadd + 1] = deadlines[i]
    zadd[#zadd + 1] = id
  end
  call_many({'ZADD', K_LEASED, 'XX'}, zadd)
  return deadlines
end

-- The lease (if any) ends without its holder's report: expiry, cancel,
-- operator retry. Its holder's late calls are then refused as stale.
local function end_lease(f)
  f[F_WORKER] = ''
  f[F_TOKEN] = ''
end

-- Put a job (record table f, state already not ready) into the ready set,
-- scored by its aging stamp (a caller that gives it a new ready time calls
-- rec_stamp first).
local function to_ready(f, id)
  f[F_STATE] = 'R'
  redis.call('ZADD', K_READY, ready_score(f), rec_member(f, id))
end

-- Final state "dead": keep the record with its reason for dead_ttl.
local function to_dead(f, id, now, outcome)
  local _, _, _, dttl = rec_options(f)
  f[F_STATE] = 'X'
  f[F_FINISHED_MS] = int(now)
  f[F_OUTCOME] = outcome
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
  f[F_STATE] = state
  f[F_FINISHED_MS] = int(now)
  f[F_OUTCOME] = outcome
  redis.call('ZADD', K_DONE, now + rttl, id)
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  publish_finished({id})
end

-- Remove a pending (ready/delayed/failed/leased) job from whichever set holds it.
local function unindex(f, id)
  local st = f[F_STATE]
  if st == 'R' then
    redis.call('ZREM', K_READY, rec_member(f, id))
  elseif st == 'D' or st == 'F' then
    redis.call('ZREM', K_DELAYED, rec_member(f, id))
  elseif st == 'L' then
    redis.call('ZREM', K_LEASED, id)
  end
end
