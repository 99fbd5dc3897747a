-- lease.lua -- lease up to N ready jobs to a worker, in priority order.
--
-- First promotes due delayed jobs and requeues expired leases (each bounded
-- per call), then pops the best N ready jobs (lowest score; equal scores in
-- member order = enqueue order), stamps each with attempt + 1, a fresh
-- fencing token (from the queue's sequence) and the worker id, and records
-- its lease deadline (server time + the job's lease duration).
--
-- Idempotent per request id: the ids leased are cached under KEYS[11] for
-- ARGV[4] ms; a repeated call with the same key (a client retry after a lost
-- reply) returns the same leases instead of leasing more jobs.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua)
-- KEYS[11] P:{Q}:lreq:<request id> -- reply cache of this request (STRING)
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, maximum number of jobs to lease (integer >= 0; 0 = only maintain)
-- ARGV[3]  worker id
-- ARGV[4]  reply cache lifetime, ms (integer > 0)
-- ARGV[5]  promotion batch: max delayed jobs promoted per call
-- ARGV[6]  reaping batch: max expired leases requeued per call
-- ARGV[7]  expiry batch: max finished/dead records deleted per call, per set
-- Returns: {wake_ms, paused, id1, record1, id2, record2, ...}
--   wake_ms  ms until the next ETA or lease deadline (0 = more is already
--            due, -1 = nothing pending); the worker may block that long
--   paused   1 if the queue is paused (nothing leased), else 0
--   idK, recordK  each leased job and its new record (see lib/record.lua)
-- Errors: "ERR scheduler: bad arguments".

--@include lib/keys.lua
--@include lib/record.lua
--@include lib/maintenance.lua

EVENTS_MAXLEN = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local worker = ARGV[3]
local cache_ms = tonumber(ARGV[4])
local promote_batch, reap_batch, expire_batch = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
if not (n and cache_ms and promote_batch and reap_batch and expire_batch) or worker == '' then
  return redis.error_reply('ERR scheduler: bad arguments')
end

local now = now_ms()

-- A retried request: answer with what the first run leased.
local cached = redis.call('GET', KEYS[11])
if cached then
  local reply = {next_due_in(now), 0}
  for id in string.gmatch(cached, '[^,]+') do
    local rec = redis.call('HGET', K_JOBS, id)
    if rec then
      local f = rec_decode(rec)
      if f and f[F_ST] == 'L' and f[F_WK] == worker then
        reply[#reply + 1] = id
        reply[#reply + 1] = rec
      end
    end
  end
  return reply
end

local promoted = promote_due(now, promote_batch)
local reaped = reap_expired(now, reap_batch)
expire_finished(now, expire_batch)

local wake_ms = next_due_in(now)
if promoted == promote_batch or reaped == reap_batch then wake_ms = 0 end

if redis.call('HGET', K_META, 'paused') == '1' then
  return {wake_ms, 1}
end

local reply = {wake_ms, 0}
if n > 0 then
  local popped = redis.call('ZPOPMIN', K_READY, n)
  local ids = {}
  for i = 1, #popped, 2 do
    local id = member_id(popped[i])
    local rec = redis.call('HGET', K_JOBS, id)
    local f = rec and rec_decode(rec)
    if f and f[F_ST] == 'R' then
      local _, lease_ms = rec_options(f)
      f[F_ST] = 'L'
      f[F_AT] = int(tonumber(f[F_AT]) + 1)
      f[F_TK] = int(next_seq())
      f[F_WK] = worker
      local enc = rec_encode(f)
      redis.call('HSET', K_JOBS, id, enc)
      redis.call('ZADD', K_LEASED, now + lease_ms, id)
      emit('leased', id, f[F_AT])
      reply[#reply + 1] = id
      reply[#reply + 1] = enc
      ids[#ids + 1] = id
    end
  end
  if #ids > 0 then
    redis.call('SET', KEYS[11], table.concat(ids, ','), 'PX', cache_ms)
    -- More work left and this worker took all it asked for: pass the wake-up on.
    if #ids == n and redis.call('ZCARD', K_READY) > 0 then wake() end
  end
end
return reply
