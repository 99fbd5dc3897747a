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

local REC_SEP, REC_FIELDS, REC_VERSION = '\31', 17, '1'
local F_VERSION, F_STATE, F_ATTEMPTS, F_SEQ, F_TOKEN, F_WORKER, F_ENQUEUED_MS, F_READY_MS, F_FINISHED_MS, F_STARTED_MS, F_PRIORITY, F_INPUTS, F_OPTIONS, F_TASK, F_OUTCOME, F_META, F_PAYLOAD =
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

-- Ready score; mirrors scheduler/priority.py ready_score exactly.
local function ready_score(aging, f)
  local p = tonumber(f[F_PRIORITY])
  if aging == 0 then return -p end
  return aging * (ready_ms(f) / 1000) - p
end

local function is_pending(st)
  return st == 'R' or st == 'D' or st == 'F' or st == 'L'
end
