-- lib/quarantine.lua -- library: damaged job records go dead with their reason (not run on its own).
--
-- KEYS: writes jobs, ready, delayed, leased, done, dead, events, stats; publishes
-- on the finished channel (lib/keys.lua). ARGV: none of its own.
-- Events: dead (detail "damaged").
--@include lib/record.lua
--@include lib/keys.lua
--@include lib/signals.lua
--@include lib/util.lua
--
-- A record that fails rec_decode's checks (lib/record.lua, "Validation") is
-- "damaged". Every script that reads a record goes through checked_record,
-- which moves a damaged one to the dead set at once -- rewritten as a
-- readable dead record -- and answers nil, so the script carries on with
-- the other jobs of its call and nothing errors half-way. The dead record:
--   * keeps every field that passed its check (seq, priority, task,
--     payload, ...); the others get a neutral value (attempts 0, priority
--     0, options "1,60000,0,-1", enqueued_ms now);
--   * has state dead, no lease (token and worker cleared), finished now;
--   * has as outcome an error record {"error": "damaged record: <reason>",
--     "type": "DamagedRecord", "traceback": "", "attempt": n, "record":
--     <the original text>} -- in which, if the text is not valid UTF-8,
--     every byte >= 0x80 is written "\xNN";
--   * stays until its dead retention (forever when its options were
--     damaged), in the dead set like any dead job: `jobs list -s dead`,
--     `job show`, `job retry` and `purge` work on it.
-- The queue's stats counter "damaged" counts them (scheduler status).

-- Ids already moved this call (a call may name an id twice).
local QUARANTINED = {}

-- Move damaged record `raw` of job `id` to dead (see above). Its helpers
-- are made here, only when a record is damaged: as top-level functions
-- every call of every script that reads a record made them (~11k
-- instructions per lease call; Redis runs the whole chunk per call).
local function quarantine(id, raw, reason, now)
  if QUARANTINED[id] then return end
  QUARANTINED[id] = true
  -- Options given to a record whose options were damaged: one attempt, a
  -- 60 s lease, no result retention, kept dead until removed.
  local DAMAGED_OPTIONS = '1,60000,0,-1'

  local function escape_high_bytes(s)
    return (string.gsub(s, '[\128-\255]', function(c)
      return string.format('\\x%02X', string.byte(c))
    end))
  end

  -- The dead record that replaces damaged `raw` (see above).
  local function salvage(raw, reason, now)
    local f = {REC_VERSION, 'X', '0', format_seq(0), '', '', int(now), '', int(now), '', '0', '',
               DAMAGED_OPTIONS, '', '', '', '', ''}
    local full = rec_full()
    local old = {string.match(raw, REC_PATTERN)}
    if #old == REC_FIELDS then
      for _, c in ipairs(full.checks) do
        if c[1] ~= F_STATE and c[1] ~= F_TOKEN and c[1] ~= F_FINISHED_MS and c[2](old[c[1]]) then
          f[c[1]] = old[c[1]]
        end
      end
      for _, i in ipairs({F_TASK, F_META, F_PAYLOAD}) do
        if full.utf8_ok(old[i]) then f[i] = old[i] end
      end
    end
    local text = raw
    if not full.utf8_ok(raw) then text = escape_high_bytes(raw) end
    f[F_OUTCOME] = cjson.encode({error = 'damaged record: ' .. reason, type = 'DamagedRecord',
                                 traceback = '', attempt = tonumber(f[F_ATTEMPTS]), record = text})
    return f, #old == REC_FIELDS and full.is_seq(old[F_SEQ]) and old[F_SEQ] or nil
  end

  local f, seq = salvage(raw, reason, now)
  if seq then
    redis.call('ZREM', K_READY, seq .. ':' .. id)
    redis.call('ZREM', K_DELAYED, seq .. ':' .. id)
  end
  redis.call('ZREM', K_LEASED, id)
  redis.call('ZREM', K_DONE, id)
  local _, _, _, dttl = rec_options(f)
  local expires = math.huge
  if dttl >= 0 then expires = now + dttl end
  redis.call('ZADD', K_DEAD, expires, id)
  redis.call('HSET', K_JOBS, id, rec_encode(f))
  count('damaged', 1)
  emit('dead', id, 'damaged')
  publish_finished({id})
end

-- The decoded record `raw` (a jobs-hash value, or false/nil) of job `id`.
-- Answers the record table; or nil, false when there is none; or nil, true
-- when it was damaged (it is now dead, see above). `now` in ms (nil: read
-- the server clock if needed).
local function checked_record(id, raw, now)
  if not raw then return nil, false end
  local f, reason = rec_decode(raw)
  if f then return f, false end
  if QUARANTINED[id] then return nil, true end
  quarantine(id, raw, reason, now or now_ms())
  return nil, true
end
