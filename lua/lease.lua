-- lease.lua -- lease up to N ready jobs to a worker, in priority order.
--
-- First promotes due delayed jobs and requeues expired leases (each bounded
-- per call); if either pass left due work over, it leases nothing and answers
-- wake_ms 0 (call again), so a job is never leased ahead of a better one that
-- was already due (docs/design.md, "Ordering"). Then it pops the best N ready jobs (lowest score; equal scores in
-- member order = enqueue order), stamps each with attempt + 1, a fresh
-- fencing token (from the queue's sequence) and the worker id, and records
-- its lease deadline (server time + the job's lease duration).
--
-- Idempotent per request id: the leases made (job id and token) are cached
-- under the request id (ARGV[12]) in the queue's reply cache (KEYS[13],
-- KEYS[14]; lib/replies.lua) for ARGV[4] ms; a repeated call with the same
-- request id (a client retry after a lost reply) returns exactly those
-- leases that are still held (same token), never another request's,
-- instead of leasing more jobs. Each lease it returns is renewed as
-- heartbeat.lua renews it (deadline = server time + the job's lease
-- duration; lib/transitions.lua renew_leases): the retry may come after
-- the deadline passed (the reply was lost, the network was down), and a
-- lease answered but already expired would be reaped under the worker as it
-- starts the job, which would then run twice (or at attempt 2). A lease
-- reaped meanwhile is no longer held and is not returned. A repeated call
-- does no maintenance and leases nothing. Each new call deletes up to
-- ARGV[7] expired cache entries.
--
-- A lease starts "not started" (F_STARTED_MS empty): start.lua marks it
-- when the worker begins running it; an unstarted lease that expires gives
-- its attempt back (lib/maintenance.lua reap_expired). When the new leases
-- bring the queue's earliest lease deadline forward (e.g. the first lease
-- of a quiet queue), one idle worker is woken so that it learns the
-- deadline and requeues the job on time if this worker dies. A call about
-- to idle that leased nothing and finds nothing ready, delayed or leased
-- drops the markers left in the wake list (lib/signals.lua
-- drop_stale_wake): such a marker (e.g. pushed by the lease of a job
-- finished since) could only make a worker look again for nothing.
--
-- Limits and capacity (lib/limits.lua): the queue's and its tasks'
-- concurrency and rate limits (KEYS[12]) are enforced here, so they hold
-- across all workers; a job a limit holds back stays ready in its place and
-- the reply's wake_ms says when a rate frees up. A worker that declares a
-- capacity (ARGV[8]) is handed only jobs whose resource fits its free
-- capacity (ARGV[9]), in ready order; a job that fits the capacity but not
-- the free part blocks the jobs behind it once it has waited ARGV[10] ms
-- (0 = strict, never passed; -1 = unbounded backfill). Without limits and
-- capacity the best N are popped at once (ZPOPMIN); with them, at most
-- ARGV[11] ready entries are looked at per call.
--
-- KEYS[1..10]: the standard queue keys (lib/keys.lua)
-- KEYS[11] P:{Q}:taskstats HASH  (not used; the extended key list)
-- KEYS[12] P:{Q}:limits    HASH  limits and their state (read and written)
-- KEYS[13] P:{Q}:lreqs -- lease reply cache: request id -> "token,id,..." (HASH)
-- KEYS[14] P:{Q}:lreqx -- its expiry index: request id by expiry, ms (ZSET)
-- ARGV[1]  events stream max length (integer; 0 = no events)
-- ARGV[2]  N, maximum number of jobs to lease (integer >= 0; 0 = only maintain)
-- ARGV[3]  worker id
-- ARGV[4]  reply cache lifetime, ms (integer > 0)
-- ARGV[5]  promotion batch: max delayed jobs promoted per call (>= 1)
-- ARGV[6]  reaping batch: max expired leases requeued per call (>= 1)
-- ARGV[7]  expiry batch: max finished/dead records deleted per set when
--          fewer than N are leased (lib/expiry.lua), and max expired
--          reply-cache entries deleted per call (lib/replies.lua)
-- ARGV[8]  the worker's capacity in resource units (finite number > 0), or
--          "" for unlimited (then ARGV[9], ARGV[10] are ignored)
-- ARGV[9]  the worker's free capacity (finite number >= 0)
-- ARGV[10] backfill wait, ms (integer; 0 = strict, -1 = unbounded)
-- ARGV[11] scan limit: most ready entries looked at when limits or a
--          capacity apply (integer >= 1)
-- ARGV[12] request id (non-empty)
-- Returns: {wake_ms, paused, aging, id1, record1, id2, record2, ...}
--   wake_ms  ms until the next ETA, lease deadline, finished-record
--            expiry (lib/expiry.lua) or rate limit freeing up (0 = more is
--            already due -- then nothing was leased if a pass left due work
--            over: call again --, or all N were leased; -1 = nothing
--            pending); a worker that leased fewer than N may block that long
--   paused   1 if the queue is paused (nothing leased), else 0
--   aging    the queue's current aging rate as text ('%.17g', exact);
--            informational: the worker orders its buffer by each record's
--            ready score (its aging stamp, lib/record.lua)
--   idK, recordK  each leased job and its new record (see lib/record.lua)
-- Errors: "ERR scheduler: bad arguments".
-- Events: leased; and from maintenance: promoted, expired, dead; dead
--   (detail "damaged") for a damaged record met (lib/quarantine.lua).
--   A repeated request writes none (its renewals are like heartbeats).

--@include lib/batch.lua
--@include lib/record.lua
--@include lib/expiry.lua
--@include lib/limits.lua
--@include lib/maintenance.lua
--@include lib/quarantine.lua
--@include lib/queue.lua
--@include lib/replies.lua
--@include lib/signals.lua

events_init(tonumber(ARGV[1]))
local n = tonumber(ARGV[2])
local worker = ARGV[3]
local request = ARGV[12]
local cache_ms = tonumber(ARGV[4])
local promote_batch, reap_batch, expire_batch = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local cap, free, wait_ms, scan = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
if not (n and cache_ms and promote_batch and reap_batch and expire_batch and wait_ms and scan)
    or worker == '' or not request or request == '' or promote_batch < 1 or reap_batch < 1
    or expire_batch < 1 or scan < 1 then
  return redis.error_reply('ERR scheduler: bad arguments')
end
if ARGV[8] == '' then
  cap = nil
elseif not (cap and cap > 0 and cap < math.huge and free and free >= 0 and free < math.huge) then
  return redis.error_reply('ERR scheduler: bad arguments')
end

local now = now_ms()
local paused, clock = queue_meta()
-- (formatted only when not 0: string.format('%.17g') costs ~0.5 us)
local aging_text = clock[1] == 0 and '0' or string.format('%.17g', clock[1])

-- A retried request: answer with exactly the leases the first run made
-- (cached as "token,id,token,id,..."), those still held under that token,
-- each renewed as a heartbeat would (its deadline may have passed while the
-- reply was lost; the holder is alive and asking). No maintenance runs here.
local cached = reply_cache_get(KEYS[13], KEYS[14], request, now)
if cached then
  local reply = {0, 0, aging_text}
  local ids, tokens = {}, {}
  for token, id in string.gmatch(cached, '([^,]+),([^,]+)') do
    ids[#ids + 1] = id
    tokens[#tokens + 1] = token
  end
  local recs = hmget_many(K_JOBS, ids)
  local held_ids, held_fs = {}, {}
  for i, id in ipairs(ids) do
    local f = recs[i] and rec_decode(recs[i])
    if f and f[F_STATE] == 'L' and f[F_WORKER] == worker and f[F_TOKEN] == tokens[i] then
      held_ids[#held_ids + 1] = id
      held_fs[#held_fs + 1] = f
      reply[#reply + 1] = id
      reply[#reply + 1] = recs[i]
    end
  end
  renew_leases(held_ids, held_fs, now)
  reply[1] = next_due_in(now)
  return reply
end

reply_cache_prune(KEYS[13], KEYS[14], now, expire_batch)
local promoted = promote_due(now, promote_batch, clock)
local reaped = reap_expired(now, reap_batch)
local more_due = promoted == promote_batch or reaped == reap_batch
-- Due jobs left over may beat the ready head: lease only once all are in.
if more_due then n = 0 end

if paused then
  return {more_due and 0 or next_due_in(now), 1, aging_text}
end

local reply = {0, 0, aging_text}
local got = 0
local limits = limits_load()
local limit_wake = -1
local room = n
if limits and n > 0 then room, limit_wake = lim_queue_room(limits, n, now) end
if room > 0 then
  local valid = {}
  if cap or (limits and limits.per_task) then
    local picked, drop, held_wake = select_ready(room, now, limits, cap, free, wait_ms, scan)
    if held_wake > 0 and (limit_wake <= 0 or held_wake < limit_wake) then limit_wake = held_wake end
    local members = {}
    for _, item in ipairs(picked) do
      valid[#valid + 1] = {item[1], item[2]}
      members[#members + 1] = item[3]
    end
    for _, m in ipairs(drop) do members[#members + 1] = m end
    zrem_all(K_READY, members)
  else
    local popped = redis.call('ZPOPMIN', K_READY, room)
    local ids = {}
    for i = 1, #popped, 2 do ids[#ids + 1] = member_id(popped[i]) end
    local recs = hmget_many(K_JOBS, ids)
    for i, id in ipairs(ids) do
      -- Checked before anything is leased; a damaged record goes dead.
      local f = checked_record(id, recs[i], now)
      if f and f[F_STATE] == 'R' then
        valid[#valid + 1] = {id, f}
        if limits then lim_take(limits, id, f[F_TASK], now) end
      end
    end
  end
  if limits then limits_save(limits, now) end
  if #valid > 0 then
    local token = next_seqs(#valid)
    local hset, zadd, leased, attempts, cache = {}, {}, {}, {}, {}
    local first = redis.call('ZRANGE', K_LEASED, 0, 0, 'WITHSCORES')
    local earliest = first[2] and tonumber(first[2])
    local brings_forward = false
    for k, item in ipairs(valid) do
      local id, f = item[1], item[2]
      local _, lease_ms = rec_options(f)
      f[F_STATE] = 'L'
      f[F_ATTEMPTS] = int(tonumber(f[F_ATTEMPTS]) + 1)
      f[F_TOKEN] = int(token + k - 1)
      f[F_WORKER] = worker
      f[F_STARTED_MS] = ''
      local enc = rec_encode(f)
      if not earliest or now + lease_ms < earliest then brings_forward = true end
      hset[#hset + 1] = id
      hset[#hset + 1] = enc
      zadd[#zadd + 1] = now + lease_ms
      zadd[#zadd + 1] = id
      reply[#reply + 1] = id
      reply[#reply + 1] = enc
      leased[k] = id
      attempts[k] = f[F_ATTEMPTS]
      cache[#cache + 1] = f[F_TOKEN]
      cache[#cache + 1] = id
    end
    call_many({'HSET', K_JOBS}, hset)
    call_many({'ZADD', K_LEASED}, zadd)
    emit_many('leased', leased, attempts)
    reply_cache_put(KEYS[13], KEYS[14], request, table.concat(cache, ','), now, cache_ms)
    if brings_forward then wake() end
    got = #valid
  end
end
if limits and limits.rate[''] and got < n then
  local w = lim_token_wait(limits, '', now)
  if limit_wake <= 0 or w < limit_wake then limit_wake = w end
end
if got == n and n > 0 then
  -- Took all it asked for: the worker will ask again, no wake hint needed;
  -- if work is left, pass the wake-up on to the next idle worker.
  if redis.call('ZCARD', K_READY) > 0 then wake() end
else
  -- About to idle: do the housekeeping, and say how long it may block
  -- (until the next ETA, lease deadline or record expiry; lib/expiry.lua).
  if expire_finished(now, expire_batch) then more_due = true end
  if more_due then
    reply[1] = 0
  else
    local due, expiry = next_due_in(now), next_expiry_in(now)
    reply[1] = (due < 0 or (expiry >= 0 and expiry < due)) and expiry or due
    if limit_wake > 0 and (reply[1] < 0 or limit_wake < reply[1]) then reply[1] = limit_wake end
    -- (Not after a lease: its job is pending; this keeps the reply of the
    -- waiter's lease, on the enqueue-to-start path, as short as it was.)
    if got == 0 then drop_stale_wake() end
  end
end
return reply
