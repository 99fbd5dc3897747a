-- lib/create.lua -- library: new job records (not run on its own).
--
-- KEYS: names jobs' sets, ready and delayed (lib/keys.lua); writes nothing
-- itself (the scripts write what new_job returns). ARGV: none of its own.
--@include lib/record.lua
--@include lib/keys.lua
--@include lib/util.lua

-- The text of a new job's record (nothing written): state 'R' or 'D', seq
-- the sequence digits, now and ready the enqueue and ready times as text
-- (ready '' = the enqueue time), aged the aging stamp text ('' = 0), the
-- rest as in enqueue.lua's ARGV; options equal to REC_DEFAULT_OPTIONS are
-- stored as "". One concatenation (a single Lua CONCAT: cheaper than a
-- table and table.concat); each line names its field, in the order of
-- lib/record.lua (tests/test_record_layout.py checks it).
local function record_text(state, seq, now, ready, priority, inputs, options, task, meta, aged, payload)
  if options == REC_DEFAULT_OPTIONS then options = '' end
  return REC_VERSION          -- F_VERSION
    .. REC_SEP .. state       -- F_STATE
    .. REC_SEP .. '0'         -- F_ATTEMPTS
    .. REC_SEP .. seq         -- F_SEQ
    .. REC_SEP                -- F_TOKEN
    .. REC_SEP                -- F_WORKER
    .. REC_SEP .. now         -- F_ENQUEUED_MS
    .. REC_SEP .. ready       -- F_READY_MS
    .. REC_SEP                -- F_FINISHED_MS
    .. REC_SEP                -- F_STARTED_MS
    .. REC_SEP .. priority    -- F_PRIORITY
    .. REC_SEP .. inputs      -- F_INPUTS
    .. REC_SEP .. options     -- F_OPTIONS
    .. REC_SEP .. task        -- F_TASK
    .. REC_SEP                -- F_OUTCOME
    .. REC_SEP .. meta        -- F_META
    .. REC_SEP .. aged        -- F_AGED
    .. REC_SEP .. payload     -- F_PAYLOAD
end

-- A new job (nothing written): its record text, the set it enters (K_READY
-- or K_DELAYED), its score there and its member "<seq>:<id>". `seq` is its
-- sequence number; `due` its ETA in ms (Lua number; <= now means ready at
-- once, with ready time `now`); `clock` the queue's aging clock
-- (lib/queue.lua queue_clock; only read for a ready job, may be nil for a
-- delayed one). The aging stamp and the score are those of rec_stamp and
-- ready_score (lib/record.lua) for a job ready at `now`. `now_text` is
-- int(now) when the caller has it (a batch formats it once), else nil.
local function new_job(id, seq, task, payload, priority, inputs, options, meta, due, now, clock, now_text)
  local s = format_seq(seq)
  now_text = now_text or int(now)
  if due > now then
    return record_text('D', s, now_text, int(due), priority, inputs, options, task, meta, '', payload),
      K_DELAYED, due, s .. ':' .. id
  end
  local a, aged, score = clock_at(clock, now), '', -tonumber(priority)
  if a ~= 0 then
    aged = string.format('%.17g', a)
    score = tonumber(aged) + score
  end
  return record_text('R', s, now_text, '', priority, inputs, options, task, meta, aged, payload),
    K_READY, score, s .. ':' .. id
end
