-- lib/maintenance.lua -- library included by lease.lua (not run on its own).
--
-- KEYS: uses the standard queue KEYS named in lib/keys.lua (include it and
-- lib/record.lua first). ARGV: none of its own.
--
-- The two time-driven transitions, run by the lease path itself so that no
-- separate poller is needed for correctness. Each is bounded by `limit` per
-- call so a backlog never blocks Redis for long; the caller is told when
-- more is due (the returned wake hint is then 0).

-- Move delayed/failed jobs whose ETA has passed into the ready set.
-- Their ready time is their ETA (not the moment of promotion), so promotion
-- lag never changes the order. Returns the number promoted.
local function promote_due(now, limit)
  local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  local aging = queue_aging()
  for _, member in ipairs(due) do
    local id = member_id(member)
    local rec = redis.call('HGET', K_JOBS, id)
    if rec then
      local f = rec_decode(rec)
      if f and (f[F_ST] == 'D' or f[F_ST] == 'F') then
        to_ready(f, id, aging)
        redis.call('HSET', K_JOBS, id, rec_encode(f))
        emit('promoted', id)
      end
    end
  end
  zrem_all(K_DELAYED, due)
  return #due
end

-- Requeue jobs whose lease deadline passed (worker crashed, hung or lost
-- its network). The attempt stays counted; at max attempts the job goes dead
-- with the reason. The job keeps its place (member and ready time).
-- Returns the number handled.
local function reap_expired(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', K_LEASED, '-inf', now, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  local aging = queue_aging()
  local requeued = 0
  for _, id in ipairs(ids) do
    local rec = redis.call('HGET', K_JOBS, id)
    local f = rec and rec_decode(rec)
    if f and f[F_ST] == 'L' then
      local attempts = tonumber(f[F_AT])
      local ma = rec_options(f)
      local reason = string.format(
        '{"error":"lease expired during attempt %d (worker %s stopped heartbeating)",'
          .. '"type":"LeaseExpired","traceback":"","attempt":%d}',
        attempts, f[F_WK], attempts)
      f[F_WK] = ''
      if attempts >= ma then
        to_dead(f, id, now, reason)
      else
        f[F_OUT] = reason
        to_ready(f, id, aging)
        redis.call('HSET', K_JOBS, id, rec_encode(f))
        emit('expired', id, int(attempts))
        requeued = requeued + 1
      end
    end
  end
  zrem_all(K_LEASED, ids)
  count('expired', #ids)
  if requeued > 0 then wake() end
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
