-- lib/record.lua -- library: the job record codec and ready-set ordering (not run on its own).
--
-- KEYS: none. ARGV: none. Includes: none.
--
-- A job record is one string in the jobs HASH: 18 fields joined by "\31"
-- (ASCII unit separator) in the order of scheduler/backend/record.py FIELDS;
-- F_<FIELD NAME> is the field's 1-based index (tests/test_record_layout.py
-- checks both sides agree). Every field but the last is free of "\31" by
-- construction (validated names, digits, or JSON text, in which control
-- characters are always escaped); the payload is the final field.
--
-- Validation: rec_decode checks every field it returns against one grammar,
-- the same as scheduler/backend/record.py parse_record (tests/test_record_parity.py
-- feeds both random records on a real server): valid UTF-8; 18 fields;
-- version REC_VERSION or REC_OLD_VERSION; a known state letter; integers of 1-16 ASCII digits
-- below 2^53 (attempts, enqueued_ms; token, ready_ms, finished_ms and started_ms may be
-- empty);
-- seq of SEQ_DIGITS base-62 digits; priority (and each of the 3 or 8 inputs)
-- a finite decimal number "-?d+(.d+)?([eE][-+]?d+)?"; options "" (the
-- defaults) or four integers with max_attempts >= 1 and lease_ms >= 1,
-- optionally a fifth, timeout_ms >= 1; aged such a number or empty. A record that fails is
-- "damaged": rec_decode answers nil and the reason (the first check that
-- failed, worded the same as Python's), and the scripts move it to dead
-- (lib/quarantine.lua) instead of failing half-way -- Redis keeps the writes
-- a script made before an error, so one damaged record would otherwise stop
-- every lease of its queue or lose the jobs popped with it.

-- Times are integer milliseconds since the Unix epoch, from the server clock.
-- Numbers that become scores are passed to redis.call as Lua numbers (Redis
-- converts them with 17 significant digits), never built with '..' or cjson.

local REC_SEP, REC_FIELDS, REC_VERSION = '\31', 18, '3'
-- Version 2 records (written before version 3) have the same grammar except
-- that their options are never "": read both, write 3.
local REC_OLD_VERSION = '2'
-- The options of most jobs (the library's defaults: max_attempts 10, lease
-- 60 s, result ttl 1 h, dead ttl 7 days, no timeout) are stored as "" (a
-- version 3 record; 25 bytes less per job, which moves a no-op job's record
-- to a smaller allocation class). A format constant: it never changes with
-- the defaults (scheduler/backend/record.py DEFAULT_OPTIONS, the same).
local REC_DEFAULT_OPTIONS = '10,60000,3600000,604800000'
-- The same four numbers, for rec_options (no parse for the common "";
-- tests/test_record_layout.py checks they are REC_DEFAULT_OPTIONS).
local REC_DEFAULT_MAX_ATTEMPTS, REC_DEFAULT_LEASE_MS, REC_DEFAULT_RESULT_TTL_MS, REC_DEFAULT_DEAD_TTL_MS =
  10, 60000, 3600000, 604800000
local F_VERSION, F_STATE, F_ATTEMPTS, F_SEQ, F_TOKEN, F_WORKER, F_ENQUEUED_MS, F_READY_MS, F_FINISHED_MS, F_STARTED_MS, F_PRIORITY, F_INPUTS, F_OPTIONS, F_TASK, F_OUTCOME, F_META, F_AGED, F_PAYLOAD =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18
-- Sequence numbers are written as SEQ_DIGITS digits of base 62 in ASCII
-- order (0-9 A-Z a-z), so byte order is numeric order; 62^9 > 2^53, the
-- largest integer a Lua number holds exactly, so the width never overflows.
local SEQ_DIGITS, B62 = 9, '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
-- One string.match splits a record (much cheaper than a find/sub loop):
--   '^' .. string.rep('([^\31]*)\31', REC_FIELDS - 1) .. '(.*)$'
-- written out, as REC_FAST below: Redis runs a script's whole chunk on every
-- call, and a literal costs nothing there while building the text with
-- string.rep and '..' cost ~16k instructions per call for the two
-- (tests/test_record_parity.py checks the literals against their formulas).
local REC_PATTERN = '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31(.*)$'

-- Field grammar (see "Validation" above). The checks the fast path below
-- also uses; the others are built only when a record needs them (rec_full).
local function is_num(s)
  local rest = string.match(s, '^%-?%d+(.*)$')
  if not rest then return false end
  rest = string.match(rest, '^%.%d+(.*)$') or rest
  if rest ~= '' and not string.find(rest, '^[eE][-+]?%d+$') then return false end
  local v = tonumber(s)
  return v ~= nil and v == v and v > -math.huge and v < math.huge
end

-- Inputs: "" (explicit priority), "w,t,r" (formula), or "w,t,r,alpha,
-- min_samples,n,mean_s,cv" (formula with a learned time, lib/stats.lua).
local function is_inputs(s)
  if s == '' then return true end
  local k = 0
  for part in string.gmatch(s .. ',', '([^,]*),') do
    if not is_num(part) then return false end
    k = k + 1
  end
  return k == 3 or k == 8
end

-- The full checks, one by one (see "Validation" above), for a record the
-- fast path refused (a damaged one, or one of a rarer shape) and for
-- lib/quarantine.lua. Built on first use and kept for the rest of the call:
-- its tables and closures cost ~20k instructions, which every call paid
-- when they were made in the chunk. Answers a table:
--   decode(s)   the fields, or nil and the reason (rec_decode_checked);
--   checks      {index, check, what it must be} per checked field, in
--               checking order (the reason is "<field> is not <what>");
--   utf8_ok(s)  whether s is valid UTF-8;
--   is_seq(s)   whether s is a sequence number (SEQ_DIGITS base-62 digits).
local REC_FULL = {}
local function rec_full()
  if REC_FULL.decode then return REC_FULL end
  -- UTF-8 well-formedness (Unicode Table 3-7, what Python's strict decoder
  -- accepts): replace every valid multi-byte sequence by an ASCII byte,
  -- longest first; a byte >= 0x80 left over is invalid. C-speed gsubs;
  -- ASCII text returns at the first find.
  local utf8_valid = {
    '\240[\144-\191][\128-\191][\128-\191]', '[\241-\243][\128-\191][\128-\191][\128-\191]',
    '\244[\128-\143][\128-\191][\128-\191]', '\224[\160-\191][\128-\191]',
    '[\225-\236\238\239][\128-\191][\128-\191]', '\237[\128-\159][\128-\191]',
    '[\194-\223][\128-\191]',
  }
  local function utf8_ok(s)
    if not string.find(s, '[\128-\255]') then return true end
    for _, p in ipairs(utf8_valid) do s = string.gsub(s, p, 'u') end
    return not string.find(s, '[\128-\255]')
  end
  local int_limit = 9007199254740992 -- 2^53: larger integers are not exact in Lua
  local function is_int(s)
    return #s <= 16 and string.find(s, '^%d+$') ~= nil and tonumber(s) < int_limit
  end
  local function is_options(s)
    if s == '' then return true end
    local ma, lease, rttl, dttl, rest = string.match(s, '^(%d+),(%d+),(%d+),(%-?%d+)(.*)$')
    if not (ma and is_int(ma) and is_int(lease) and is_int(rttl)) then return false end
    if rest ~= '' then -- the optional timeout_ms
      local tmo = string.match(rest, '^,(%d+)$')
      if not (tmo and is_int(tmo) and tonumber(tmo) >= 1) then return false end
    end
    if string.sub(dttl, 1, 1) == '-' then dttl = string.sub(dttl, 2) end
    return is_int(dttl) and tonumber(ma) >= 1 and tonumber(lease) >= 1
  end
  local function is_opt_int(s) return s == '' or is_int(s) end
  local function is_opt_num(s) return s == '' or is_num(s) end
  local function is_seq(s)
    return #s == SEQ_DIGITS and not string.find(s, '[^0-9A-Za-z]')
  end
  local states = {R = true, D = true, L = true, F = true, S = true, X = true, C = true}
  local function is_state(s) return states[s] == true end
  local checks = {
    {F_STATE, is_state, 'a known state letter'}, {F_ATTEMPTS, is_int, 'an integer'},
    {F_SEQ, is_seq, '9 base-62 digits'}, {F_TOKEN, is_opt_int, 'an integer or empty'},
    {F_ENQUEUED_MS, is_int, 'an integer'}, {F_READY_MS, is_opt_int, 'an integer or empty'},
    {F_FINISHED_MS, is_opt_int, 'an integer or empty'},
    {F_STARTED_MS, is_opt_int, 'an integer or empty'}, {F_PRIORITY, is_num, 'a finite number'},
    {F_INPUTS, is_inputs, '3 or 8 finite numbers, or empty'},
    {F_OPTIONS, is_options,
      'four integers (max_attempts >= 1, lease_ms >= 1), optionally a fifth (timeout_ms >= 1), or empty'},
    {F_AGED, is_opt_num, 'a finite number or empty'},
  }
  local names = {'version', 'state', 'attempts', 'seq', 'token', 'worker', 'enqueued_ms',
    'ready_ms', 'finished_ms', 'started_ms', 'priority', 'inputs', 'options', 'task', 'outcome', 'meta',
    'aged', 'payload'}
  REC_FULL.decode = function(s)
    if not utf8_ok(s) then return nil, 'record is not valid UTF-8' end
    local f = {string.match(s, REC_PATTERN)}
    if #f ~= REC_FIELDS then
      local n = 1
      for _ in string.gmatch(s, REC_SEP) do n = n + 1 end
      return nil, string.format('record has %d fields, expected %d', n, REC_FIELDS)
    end
    if f[F_VERSION] ~= REC_VERSION and f[F_VERSION] ~= REC_OLD_VERSION then
      return nil, 'version is not ' .. REC_OLD_VERSION .. ' or ' .. REC_VERSION
    end
    for _, c in ipairs(checks) do
      if not c[2](f[c[1]]) then return nil, names[c[1]] .. ' is not ' .. c[3] end
    end
    return f
  end
  REC_FULL.checks, REC_FULL.utf8_ok, REC_FULL.is_seq = checks, utf8_ok, is_seq
  return REC_FULL
end

-- Decode a record with every check (see "Validation" above).
local function rec_decode_checked(s)
  return rec_full().decode(s)
end

-- Fast path of rec_decode: one string.match whose grammar is a subset of
-- the checks above (ASCII text; unsigned integers of at most 15 digits, so
-- below 2^53; options "" or four integers), then cheap exact checks of what
-- the pattern cannot say (lengths, max_attempts/lease_ms >= 1; priority,
-- inputs and aged by their own checks, with a shortcut for plain
-- integers). A record it accepts is valid and decodes to the same fields;
-- any other goes through the full checks, which also word the reason.
-- About 5x cheaper on a typical record (docs/benchmarks.md, "Drain after
-- the worker and safety changes"). The pattern, written out (see
-- REC_PATTERN), is
--   '^([' .. REC_OLD_VERSION .. REC_VERSION .. '])\31([RDLFSXC])\31(%d+)\31('
--   .. string.rep('[0-9A-Za-z]', SEQ_DIGITS) .. ')\31(%d*)\31' .. REC_TEXT .. '\31(%d+)\31(%d*)'
--   .. '\31(%d*)\31(%d*)\31(%-?%d+%.?%d*)\31' .. REC_TEXT
--   .. '\31([0-9,%-]*)' .. string.rep('\31' .. REC_TEXT, 4) .. '\31([^\128-\255]*)$'
-- with REC_TEXT = '([^\31\128-\255]*)'.
local REC_FAST = '^([23])\31([RDLFSXC])\31(%d+)\31([0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z][0-9A-Za-z])\31(%d*)\31([^\31\128-\255]*)\31(%d+)\31(%d*)\31(%d*)\31(%d*)\31(%-?%d+%.?%d*)\31([^\31\128-\255]*)\31([0-9,%-]*)\31([^\31\128-\255]*)\31([^\31\128-\255]*)\31([^\31\128-\255]*)\31([^\31\128-\255]*)\31([^\128-\255]*)$'
-- Default options ("") or four integers (a fifth, the timeout, takes the full checks).
local REC_FAST_OPTIONS = '^(%d+),(%d+),(%d+),(%-?%d+)$'

-- The checks after the pattern, for the shape of most records: a decimal
-- priority without exponent, options "" and inputs "" or three integers
-- are decided with at most one string call each and no call of their own
-- (~2k instructions per decode less than through helper functions); any
-- other shape takes the general check of its field, or the full checks.
local function rec_decode_fast(s)
  local f = {string.match(s, REC_FAST)}
  local p = f[F_PRIORITY]
  -- (the pattern took the priority as "-?d+.d*": fewer than 300 digits
  -- before the point is finite, and only "d+." is not a number)
  if not p or #f[3] > 15 or #f[5] > 15 or #f[7] > 15 or #f[8] > 15 or #f[9] > 15
      or #f[10] > 15 or #p >= 300 or string.byte(p, -1) == 46 then
    return nil
  end
  local options = f[F_OPTIONS]
  if options ~= '' then
    local ma, lease, rttl, dttl = string.match(options, REC_FAST_OPTIONS)
    if not ma or #ma > 15 or #lease > 15 or #rttl > 15 or #dttl > 15
        or tonumber(ma) < 1 or tonumber(lease) < 1 then
      return nil
    end
  end
  local inputs, aged = f[F_INPUTS], f[F_AGED]
  if inputs ~= '' and not (#inputs < 300 and string.find(inputs, '^%d+,%d+,%d+$'))
      and not is_inputs(inputs) then
    return nil
  end
  if aged ~= '' and not ((#aged < 300 and string.find(aged, '^%-?%d+$')) or is_num(aged)) then
    return nil
  end
  return f
end

-- Decode a record into a table of REC_FIELDS strings. A damaged record
-- answers nil and the reason (see "Validation" above).
local function rec_decode(s)
  local f = rec_decode_fast(s)
  if f then return f end
  return rec_full().decode(s)
end

local function rec_encode(f)
  return table.concat(f, REC_SEP, 1, REC_FIELDS)
end

-- Options field: "max_attempts,lease_ms,result_ttl_ms,dead_ttl_ms[,timeout_ms]",
-- or "" for REC_DEFAULT_OPTIONS.
-- (dead ttl -1 = keep). The timeout (ms) is absent when the job has none
-- (records written before it existed have 4 numbers); it is enforced by the
-- worker, so the scripts only have to read past it: the 5th value is nil
-- without one.
-- The defaults ("") answer constants: parsing them took ~11k instructions,
-- paid per job by lease (the lease time) and complete (the result ttl).
local function rec_options(f)
  local options = f[F_OPTIONS]
  if options == '' then
    return REC_DEFAULT_MAX_ATTEMPTS, REC_DEFAULT_LEASE_MS, REC_DEFAULT_RESULT_TTL_MS, REC_DEFAULT_DEAD_TTL_MS, nil
  end
  local ma, lease, rttl, dttl, tmo = string.match(options, '^(%d+),(%d+),(%d+),(%-?%d+),?(%d*)$')
  return tonumber(ma), tonumber(lease), tonumber(rttl), tonumber(dttl), tonumber(tmo)
end

-- The job's member in the ready/delayed sets: "<seq>:<id>".
local function rec_member(f, id)
  return f[F_SEQ] .. ':' .. id
end

local function member_id(member)
  return string.sub(member, SEQ_DIGITS + 2)
end

-- Nine digits, least significant last: one string.byte each and one
-- string.char (a table and a concat per call cost three times as much).
local function format_seq(n)
  local byte = string.byte
  local d9 = n % 62; n = (n - d9) / 62
  local d8 = n % 62; n = (n - d8) / 62
  local d7 = n % 62; n = (n - d7) / 62
  local d6 = n % 62; n = (n - d6) / 62
  local d5 = n % 62; n = (n - d5) / 62
  local d4 = n % 62; n = (n - d4) / 62
  local d3 = n % 62; n = (n - d3) / 62
  local d2 = n % 62; n = (n - d2) / 62
  return string.char(byte(B62, n % 62 + 1), byte(B62, d2 + 1), byte(B62, d3 + 1), byte(B62, d4 + 1),
    byte(B62, d5 + 1), byte(B62, d6 + 1), byte(B62, d7 + 1), byte(B62, d8 + 1), byte(B62, d9 + 1))
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
