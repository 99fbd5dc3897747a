-- lib/limits.lua -- library: concurrency and rate limits, and resource
-- capacity, applied when leasing (not run on its own).
--
-- KEYS: reads/writes limits (KEYS[12]); reads ready, leased, jobs
-- (lib/keys.lua). ARGV: none of its own. Events: dead (detail "damaged")
-- for a damaged record met while scanning (lib/quarantine.lua).
--@include lib/batch.lua
--@include lib/record.lua
--@include lib/keys.lua
--@include lib/quarantine.lua
--@include lib/util.lua
--
-- The limits hash P:{Q}:limits has one field per setting and per piece of
-- state; <scope> is "" for the queue itself or a task name:
--   conc:<scope>    N: leases held at once (integer >= 1)
--   rate:<scope>    "N/period_ms": leases per period (integers >= 1)
--   bucket:<scope>  "tokens,last_ms": the rate's token bucket
--   held:<task>     job ids leased under a task concurrency limit ("a,b,...")
-- (written by queue_limit.lua; scheduler/limits.py reads the same layout).
--
-- Concurrency: the queue's leases are the leased set (ZCARD, exact). A
-- task's are the ids in held:<task> still in the leased set (ZMSCORE): the
-- lease script adds each lease it makes, and ids whose lease ended
-- (completed, failed, released, expired, cancelled) drop out when next
-- counted -- exact without any other script keeping a counter.
--
-- Rate: a token bucket per scope, size N, refilled continuously at N per
-- period (at most N leases at once, N per period in the long run; over any
-- window of W ms at most N + N * W / period leases). Chosen over a sliding
-- window log, which is exact per window but keeps one timestamp per lease
-- (N per scope, rewritten by every lease); the bucket is two numbers.
-- Limits count leases: a lease is the job's start unless the worker
-- buffers it (prefetch).

local function lim_rate(text)
  local n, p = string.match(text or '', '^(%d+)/(%d+)$')
  n, p = tonumber(n), tonumber(p)
  if n and p and n >= 1 and p >= 1 then return {n, p} end
  return nil
end

-- The limits of the queue and its tasks in one HGETALL; nil when none.
-- A malformed setting is ignored (queue_limit.lua never writes one).
local function limits_load()
  local raw = redis.call('HGETALL', K_LIMITS)
  if #raw == 0 then return nil end
  local L = {conc = {}, rate = {}, bucket = {}, held = {}, tokens = {}, ids = {},
             dirty_bucket = {}, dirty_held = {}, per_task = false}
  for i = 1, #raw, 2 do
    local kind, scope = string.match(raw[i], '^(%a+):(.*)$')
    if kind == 'conc' then
      local c = tonumber(raw[i + 1])
      if c and c >= 1 then L.conc[scope] = c end
    elseif kind == 'rate' then
      L.rate[scope] = lim_rate(raw[i + 1])
    elseif kind == 'bucket' then
      L.bucket[scope] = raw[i + 1]
    elseif kind == 'held' then
      L.held[scope] = raw[i + 1]
    end
    if scope ~= '' and (kind == 'conc' or kind == 'rate') then L.per_task = true end
  end
  return L
end

-- Tokens available in `scope`'s bucket at `now` (refilled; cached per call).
local function lim_tokens(L, scope, now)
  local t = L.tokens[scope]
  if t then return t end
  local r = L.rate[scope]
  local tok, last = string.match(L.bucket[scope] or '', '^([^,]+),([^,]+)$')
  tok, last = tonumber(tok), tonumber(last)
  if not (tok and last and tok >= 0 and tok <= r[1]) then
    tok, last = r[1], now -- no state yet (or damaged): a full bucket
  end
  t = math.min(r[1], tok + math.max(0, now - last) * r[1] / r[2])
  L.tokens[scope] = t
  return t
end

-- ms until `scope`'s bucket holds one token.
local function lim_token_wait(L, scope, now)
  local r = L.rate[scope]
  return math.max(1, math.ceil((1 - lim_tokens(L, scope, now)) * r[2] / r[1]))
end

-- Leases held now under `task`'s concurrency limit (pruned; cached per call).
local function lim_held(L, task)
  local ids = L.ids[task]
  if ids then return #ids end
  ids = {}
  local listed = {}
  for id in string.gmatch(L.held[task] or '', '[^,]+') do listed[#listed + 1] = id end
  if #listed > 0 then
    local scores = redis.call('ZMSCORE', K_LEASED, unpack(listed))
    for i, id in ipairs(listed) do
      if scores[i] then ids[#ids + 1] = id end
    end
  end
  if #ids ~= #listed then L.dirty_held[task] = true end
  L.ids[task] = ids
  return #ids
end

-- Why a ready job of `task` may not be leased now: nil (it may), or the ms
-- until its rate frees up (-1: a concurrency limit; frees when a lease ends).
local function lim_blocked(L, task, now)
  if L.conc[task] and lim_held(L, task) >= L.conc[task] then return -1 end
  if L.rate[task] and lim_tokens(L, task, now) < 1 then return lim_token_wait(L, task, now) end
  return nil
end

-- Account one lease of job `id` of `task` (queue and task scopes).
local function lim_take(L, id, task, now)
  for _, scope in ipairs({'', task}) do
    if L.rate[scope] then
      L.tokens[scope] = lim_tokens(L, scope, now) - 1
      L.dirty_bucket[scope] = true
    end
  end
  if L.conc[task] then
    lim_held(L, task)
    local ids = L.ids[task]
    ids[#ids + 1] = id
    L.dirty_held[task] = true
  end
end

-- How many of `n` jobs the queue's own limits allow now (its rate's wait is
-- asked after the leases, lim_token_wait).
local function lim_queue_room(L, n, now)
  local room, wait = n, -1
  if L.conc[''] then
    local free = L.conc[''] - redis.call('ZCARD', K_LEASED)
    if free < room then room, wait = math.max(0, free), -1 end
  end
  if L.rate[''] then
    local t = math.floor(lim_tokens(L, '', now))
    if t < room then room = math.max(0, t) end
  end
  return room, wait
end

-- Write back the state this call changed (one HSET, one HDEL at most).
local function limits_save(L, now)
  local hset, hdel = {}, {}
  for scope in pairs(L.dirty_bucket) do
    hset[#hset + 1] = 'bucket:' .. scope
    hset[#hset + 1] = string.format('%.17g,%d', L.tokens[scope], now)
  end
  for task in pairs(L.dirty_held) do
    if #L.ids[task] > 0 then
      hset[#hset + 1] = 'held:' .. task
      hset[#hset + 1] = table.concat(L.ids[task], ',')
    else
      hdel[#hdel + 1] = 'held:' .. task
    end
  end
  call_many({'HSET', K_LIMITS}, hset)
  call_many({'HDEL', K_LIMITS}, hdel)
end

-- The capacity a job takes: its resource input, or 1 with an explicit
-- priority (no inputs).
local function rec_resource(f)
  local r = string.match(f[F_INPUTS], '^[^,]+,[^,]+,([^,]+)')
  return tonumber(r) or 1
end

-- Choose up to n ready jobs in ready order that the limits (L, may be nil)
-- and the worker's capacity allow, without removing them. `cap` is the
-- worker's capacity (nil: unlimited), `free` its free capacity; a job
-- larger than `cap` is left for a bigger worker. A job that fits `cap`
-- but not `free` blocks the jobs behind it once it has waited (since it
-- became ready) `wait_ms` or longer: 0 = strict (never pass it), -1 =
-- unbounded backfill. Jobs held back by a limit are passed over and stay in
-- place. Looks at no more than `scan` entries.
-- Returns picked ({id, f, member} in order), members to drop (records gone,
-- not ready, or damaged -- those went dead), and the ms until a limit that
-- held a job back frees (-1: none timed).
local function select_ready(n, now, L, cap, free, wait_ms, scan)
  local picked, drop, wake = {}, {}, -1
  local offset, chunk = 0, math.max(2 * n, 16)
  while #picked < n and offset < scan do
    local members = redis.call('ZRANGE', K_READY, offset, math.min(offset + chunk, scan) - 1)
    if #members == 0 then break end
    offset = offset + #members
    local ids = {}
    for i, m in ipairs(members) do ids[i] = member_id(m) end
    local recs = hmget_many(K_JOBS, ids)
    for i, m in ipairs(members) do
      local f = checked_record(ids[i], recs[i], now)
      if not f or f[F_STATE] ~= 'R' then
        drop[#drop + 1] = m
      else
        local held = L and lim_blocked(L, f[F_TASK], now)
        local res = rec_resource(f)
        if held then
          if held > 0 and (wake < 0 or held < wake) then wake = held end
        elseif cap and res > cap then -- too big for this worker: left for another
        elseif cap and res > free then
          if wait_ms >= 0 and now - ready_ms(f) >= wait_ms then return picked, drop, wake end
        else
          if cap then free = free - res end
          if L then lim_take(L, ids[i], f[F_TASK], now) end
          picked[#picked + 1] = {ids[i], f, m}
          if #picked == n then return picked, drop, wake end
        end
      end
    end
  end
  return picked, drop, wake
end
