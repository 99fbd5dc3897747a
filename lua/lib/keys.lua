-- lib/keys.lua -- library included by every queue script (not run on its own).
--
-- Names the standard KEYS every queue script receives, in the order of
-- scheduler/backend/keys.py STANDARD_KEY_NAMES (all share the queue's hash tag {Q}):
--   KEYS[1]  P:{Q}:jobs     HASH   job id -> job record
--   KEYS[2]  P:{Q}:ready    ZSET   "<seq>:<id>" by ready score (lower first)
--   KEYS[3]  P:{Q}:delayed  ZSET   "<seq>:<id>" by ETA, ms
--   KEYS[4]  P:{Q}:leased   ZSET   id by lease deadline, ms
--   KEYS[5]  P:{Q}:dead     ZSET   id by expiry of the dead record, ms
--   KEYS[6]  P:{Q}:done     ZSET   id by expiry of the finished record, ms
--   KEYS[7]  P:{Q}:meta     HASH   seq, paused, aging, aging_since, aging_at
--   KEYS[8]  P:{Q}:wake     LIST   wake-up markers for idle workers
--   KEYS[9]  P:{Q}:events   STREAM job events
--   KEYS[10] P:{Q}:stats    HASH   counters and per-second rate buckets
-- Scripts that learn run times or enforce limits also receive, after them,
-- scheduler/backend/keys.py EXTENDED_KEY_NAMES:
--   KEYS[11] P:{Q}:taskstats HASH  task -> run-time statistics (lib/stats.lua)
--   KEYS[12] P:{Q}:limits    HASH  concurrency/rate limits and state (lib/limits.lua)
-- progress.lua also receives, after those (as lease.lua receives LEASE_KEY_NAMES),
-- scheduler/backend/keys.py PROGRESS_KEY_NAME (named K_PROGRESS in that script):
--   KEYS[13] P:{Q}:progress  HASH  job id -> progress JSON of running jobs
-- ARGV: none of its own. Includes: none.
-- (tests/test_record_layout.py checks this order against STANDARD_KEY_NAMES.)
local K_JOBS, K_READY, K_DELAYED, K_LEASED, K_DEAD, K_DONE, K_META, K_WAKE, K_EVENTS, K_STATS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_TASKSTATS, K_LIMITS = KEYS[11], KEYS[12]
-- Pub/sub channel (not a key) announcing ids of jobs reaching a final state:
-- "P:{Q}:finished", derived from KEYS[1] "P:{Q}:jobs" (scheduler/backend/keys.py).
local FINISHED_CHANNEL = string.sub(K_JOBS, 1, -5) .. 'finished'
