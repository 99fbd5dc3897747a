-- lib/record.lua -- library: the job record codec and ready-set ordering (not run on its own).
--
-- KEYS: none. ARGV: none. Includes: none.
--
-- A job record is one string in the jobs HASH: 17 fields joined by "\31"
-- (ASCII unit separator) in the order of scheduler/backend/record.py FIELDS;
-- F_<FIELD NAME> is the field's 1-based index (tests/test_record_layout.py
-- checks both sides agree). Every field but the last is free of "\31" by
-- construction (validated names, digits, or JSON text, in which control
-- characters are always escaped); the payload is the final field.
--
-- Version check: rec_decode answers nil for a record of another version, as
-- for a malformed one, and every caller treats nil as "no usable job": the
-- per-job scripts answer GONE / NO_JOB for it, the batch passes (lease,
-- promotion, reaping) skip it. An error reply instead would abort the whole
-- call half-way (Redis keeps the writes made before it), so one damaged or
-- foreign record would stop every lease of its queue; skipping keeps one
-- damaged record from stopping the rest. Python's parse_record raises a
-- ValueError naming the job, so operators see it in the admin reads.
--
-- Times are integer milliseconds since the Unix epoch, from the server clock.
-- Numbers that become scores are passed to redis.call as Lua numbers (Redis
-- converts them with 17 significant digits), never built with '..' or cjson.

local REC_SEP, REC_FIELDS, REC_VERSION = '\31', 17, '2'
local F_VERSION, F_STATE, F_ATTEMPTS, F_SEQ, F_TOKEN, F_WORKER, F_ENQUEUED_MS, F_READY_MS, F_FINISHED_MS, F_PRIORITY, F_INPUTS, F_OPTIONS, F_TASK, F_OUTCOME, F_META, F_AGED, F_PAYLOAD =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17
-- Sequence numbers are written as SEQ_DIGITS digits of base 62 in ASCII
-- order (0-9 A-Z a-z), so byte order is numeric order; 62^9 > 2^53, the
-- largest integer a Lua number holds exactly, so the width never overflows.
local SEQ_DIGITS, B62 = 9, '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
-- One string.match splits a record (much cheaper than a find/sub loop).
local REC_PATTERN = '^' .. string.rep('([^\31]*)\31', REC_FIELDS - 1) .. '(.*)$'

-- Decode a record into a table of REC_FIELDS strings; nil if malformed or
-- not of version REC_VERSION (see above).
local function rec_decode(s)
  local f = {string.match(s, REC_PATTERN)}
  if #f ~= REC_FIELDS or f[F_VERSION] ~= REC_VERSION then return nil end
  return f
end

local function rec_encode(f)
  return table.concat(f, REC_SEP, 1, REC_FIELDS)
end

-- Options field: "max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms" (dead ttl -1 = keep).
local function rec_options(f)
  local ma, lease, rttl, dttl = string.match(f[F_OPTIONS], '^(%d+),(%d+),(%d+),(%-?%d+)$')
  return tonumber(ma), tonumber(lease), tonumber(rttl), tonumber(dttl)
end

-- The job's member in the ready/delayed sets: "<seq>:<id>".
local function rec_member(f, id)
  return f[F_SEQ] .. ':' .. id
end

local function member_id(member)
  return string.sub(member, SEQ_DIGITS + 2)
end

local function format_seq(n)
  local out = {}
  for i = SEQ_DIGITS, 1, -1 do
    local d = n % 62
    out[i] = string.sub(B62, d + 1, d + 1)
    n = (n - d) / 62
  end
  return table.concat(out)
end

-- When the job became (or becomes) ready, ms: the ready field, or the
-- enqueue time when it is "" (a job ready at enqueue; saves 13 bytes).
local function ready_ms(f)
  local r = f[F_READY_MS]
  if r == '' then r = f[F_ENQUEUED_MS] end
  return tonumber(r)
end

-- The queue's aging clock at time t (ms since the Unix epoch): the priority
-- units a job ready since the queue's time origin would have gained by t,
--   A(t) = at + rate * ((t - since) / 1000)
-- where clock = {rate, since, at}: the rate in force (units per second), the
-- server time it was set (ms) and A at that moment (see lib/queue.lua
-- queue_meta and docs/design.md, "Ordering"). Mirrors
-- scheduler/priority.py AgingClock.at operation for operation.
local function clock_at(clock, t)
  local rate, since, at = clock[1], clock[2], clock[3]
  if rate == 0 then return at end
  return at + rate * ((t - since) / 1000)
end

-- Stamp a job entering the ready set with a new ready time: its F_AGED field
-- becomes A(ready time), kept while it waits ('' when 0, as on a queue that
-- never aged). Release, lease expiry and reprioritize keep the stamp (the
-- job keeps its place), so no history of rates is needed. Exact text: %.17g
-- round-trips every double.
local function rec_stamp(f, clock)
  local a = clock_at(clock, ready_ms(f))
  if a == 0 then f[F_AGED] = '' else f[F_AGED] = string.format('%.17g', a) end
end

-- Ready score (lower is leased first): A(ready) - priority, so the order is
-- that of the effective priority  priority + A(now) - A(ready)  (A(now) is
-- common to all jobs). '' stamps give -priority (exact). Mirrors
-- scheduler/priority.py ready_score exactly.
local function ready_score(f)
  local p = tonumber(f[F_PRIORITY])
  local a = f[F_AGED]
  if a == '' then return -p end
  return tonumber(a) - p
end

local function is_pending(st)
  return st == 'R' or st == 'D' or st == 'F' or st == 'L'
end
