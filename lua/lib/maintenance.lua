-- lib/maintenance.lua -- library: the time-driven transitions run by lease.lua (not run on its own).
--
-- KEYS: writes jobs, ready, delayed, leased, dead, wake, events, stats
-- (lib/keys.lua). ARGV: none of its own. Events: promoted, expired, dead.
-- A damaged record met on the way goes dead (lib/quarantine.lua).
--@include lib/batch.lua
--@include lib/record.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/signals.lua
--@include lib/transitions.lua
--@include lib/util.lua
--
-- The two time-driven transitions, run by the lease path itself so that no
-- separate poller is needed for correctness. Each is bounded by `limit` per
-- call so a backlog never blocks Redis for long; the caller is told when
-- more is due (the returned wake hint is then 0). Both work in batches: one
-- HMGET, one HSET and one ZADD/ZREM per call.

-- Move delayed/failed jobs whose ETA has passed into the ready set, earliest
-- ETA first. Their ready time is their ETA (not the moment of promotion) and
-- they are stamped with the aging clock at their ETA (`clock`, lib/queue.lua;
-- no rate change happens while a job is due but not promoted: see
-- queue_config.lua), so promotion lag never changes the order -- and
-- lease.lua leases nothing while due jobs are left over (docs/design.md,
-- "Ordering"). Returns the number of due entries handled.
local function promote_due(now, limit, clock)
  local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  local ids = {}
  for i, member in ipairs(due) do ids[i] = member_id(member) end
  local recs = hmget_many(K_JOBS, ids)
  local hset, zadd, moved = {}, {}, {}
  for i, id in ipairs(ids) do
    local f = checked_record(id, recs[i], now)
    if f and (f[F_STATE] == 'D' or f[F_STATE] == 'F') then
      f[F_STATE] = 'R'
      rec_stamp(f, clock)
      zadd[#zadd + 1] = ready_score(f)
      zadd[#zadd + 1] = due[i]
      hset[#hset + 1] = id
      hset[#hset + 1] = rec_encode(f)
      moved[#moved + 1] = id
    end
  end
  call_many({'ZADD', K_READY}, zadd)
  call_many({'HSET', K_JOBS}, hset)
  zrem_all(K_DELAYED, due)
  emit_many('promoted', moved)
  return #due
end

-- Requeue jobs whose lease deadline passed (worker crashed, hung or lost
-- its network). A lease whose execution started (F_STARTED_MS set by
-- start.lua) keeps its attempt counted, and at max attempts the job goes
-- dead with the reason; a lease that never started (leased into a buffer,
-- or taken by a frozen worker) gives its attempt back and never goes dead.
-- The job keeps its place (member, ready time and aging stamp). Returns the
-- number handled.
local function reap_expired(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', K_LEASED, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  local recs = hmget_many(K_JOBS, ids)
  local hset, zadd, requeued, attempts_of = {}, {}, {}, {}
  for i, id in ipairs(ids) do
    local f = checked_record(id, recs[i], now)
    if f and f[F_STATE] == 'L' then
      local attempts = tonumber(f[F_ATTEMPTS])
      local started = f[F_STARTED_MS] ~= ''
      local ma = rec_options(f)
      local reason = string.format(
        '{"error":"lease expired during attempt %d (worker %s stopped heartbeating)",'
          .. '"type":"LeaseExpired","traceback":"","attempt":%d}',
        attempts, f[F_WORKER], attempts)
      end_lease(f)
      if not started then
        f[F_ATTEMPTS] = int(math.max(0, attempts - 1))
      end
      if started and attempts >= ma then
        to_dead(f, id, now, reason)
      else
        if started then f[F_OUTCOME] = reason end
        f[F_STATE] = 'R'
        zadd[#zadd + 1] = ready_score(f)
        zadd[#zadd + 1] = rec_member(f, id)
        hset[#hset + 1] = id
        hset[#hset + 1] = rec_encode(f)
        requeued[#requeued + 1] = id
        attempts_of[#attempts_of + 1] = f[F_ATTEMPTS]
      end
    end
  end
  call_many({'ZADD', K_READY}, zadd)
  call_many({'HSET', K_JOBS}, hset)
  zrem_all(K_LEASED, ids)
  emit_many('expired', requeued, attempts_of)
  count('expired', #ids)
  if #requeued > 0 then wake() end
  return #ids
end

-- Milliseconds until the next time-driven transition (earliest ETA or lease
-- deadline), 0 if one is already due, -1 if none is pending.
local function next_due_in(now)
  local best = -1
  for _, key in ipairs({K_DELAYED, K_LEASED}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then
      local wait = math.max(0, tonumber(first[2]) - now)
      if best < 0 or wait < best then best = wait end
    end
  end
  return best
end
