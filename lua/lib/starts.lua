-- lib/starts.lua -- library: stamp the start of leased jobs (not run on its own).
--
-- KEYS: reads jobs (lib/keys.lua); the caller writes the records back.
-- ARGV: none of its own. Events: none.
--@include lib/batch.lua
--@include lib/record.lua
--@include lib/codes.lua
--@include lib/keys.lua
--@include lib/transitions.lua
--@include lib/util.lua
--
-- Used by start.lua and by complete.lua, which carries the starts of the
-- worker's round trip so that they cost no script call of their own
-- (docs/design.md, "An attempt counts an execution that started").

-- Stamp F_STARTED_MS = `now` on each lease (ids[i], tokens[i]) still held
-- and not started yet. `decode(id, raw)` answers the record table of a
-- jobs-hash value, or nil and whether it was damaged (lib/quarantine.lua
-- checked_record: a damaged record has gone dead, its lease is lost).
-- Answers:
--   codes   the START_* code per job;
--   recs    id -> the decoded record of each job read (false when none), so
--           a caller that also finishes the job reuses it (one decode, one
--           write);
--   dirty   ids whose record was stamped, in order (the caller writes them).
local function stamp_starts(ids, tokens, now, decode)
  local raw = hmget_many(K_JOBS, ids)
  local codes, recs, dirty, bad = {}, {}, {}, {}
  local stamp = int(now) -- formatted once: string.format costs ~1 us
  for i, id in ipairs(ids) do
    local f = recs[id]
    if f == nil then
      local damaged
      f, damaged = decode(id, raw[i])
      f = f or false
      recs[id] = f
      if damaged then bad[id] = true end
    end
    if bad[id] then
      codes[i] = START_STALE
    elseif not f then
      codes[i] = START_GONE
    elseif lease_status(f, tokens[i]) ~= 'held' then
      codes[i] = START_STALE
    elseif f[F_STARTED_MS] ~= '' then
      codes[i] = START_ALREADY_STARTED
    else
      f[F_STARTED_MS] = stamp
      dirty[#dirty + 1] = id
      codes[i] = START_STARTED
    end
  end
  return codes, recs, dirty
end
