-- lib/codes.lua -- library: named reply codes (not run on its own).
--
-- KEYS: none. ARGV: none. Includes: none.
--
-- The per-job (or per-call) integers the scripts answer with, one family per
-- script, named <FAMILY>_<OUTCOME>. scheduler/backend/codes.py holds the same
-- names and values (one IntEnum per family; tests/test_reply_codes.py checks
-- they match). Values are per family: compare a reply only with its own
-- family's names. A repeated call answers with the outcome it already
-- applied (an ALREADY_* code), never with a different first-time outcome.
-- One `local` line per family: the loader keeps only the lines a script uses.

local ENQUEUE_CREATED, ENQUEUE_EXISTED = 1, 0
local COMPLETE_RECORDED, COMPLETE_ALREADY_RECORDED, COMPLETE_STALE, COMPLETE_GONE = 1, 2, 0, -1
local FAIL_RETRY_SCHEDULED, FAIL_DEAD, FAIL_ALREADY_RETRY_SCHEDULED, FAIL_ALREADY_DEAD, FAIL_STALE, FAIL_GONE = 1, 2, 3, 4, 0, -1
local RELEASE_RELEASED, RELEASE_ALREADY_RELEASED, RELEASE_STALE, RELEASE_GONE = 1, 2, 0, -1
local START_STARTED, START_ALREADY_STARTED, START_STALE, START_GONE = 1, 2, 0, -1
local HEARTBEAT_REPORTED, HEARTBEAT_LOST, HEARTBEAT_GONE = 1, 0, -1
local PROGRESS_STORED, PROGRESS_LOST, PROGRESS_GONE = 1, 0, -1
local CANCEL_CANCELLED, CANCEL_ALREADY_FINAL, CANCEL_NO_JOB = 1, 0, -1
local RETRY_REQUEUED, RETRY_NOT_RETRYABLE, RETRY_NO_JOB = 1, 0, -1
local REPRIORITIZE_CHANGED, REPRIORITIZE_NOT_WAITING, REPRIORITIZE_NO_JOB = 1, 0, -1
local RUN_NOW_PROMOTED, RUN_NOW_NOT_DELAYED, RUN_NOW_NO_JOB = 1, 0, -1
local UPSERT_CREATED, UPSERT_UPDATED, UPSERT_UNCHANGED, UPSERT_REPLACED = 1, 2, 0, 3
local PAUSE_CHANGED, PAUSE_UNCHANGED, PAUSE_NO_SCHEDULE = 1, 0, -1
local REMOVE_REMOVED, REMOVE_NO_SCHEDULE = 1, 0
local FIRE_FIRED, FIRE_STALE, FIRE_EARLY, FIRE_DROPPED, FIRE_LATE = 1, 0, 2, 3, 4
local CONFIG_SET, CONFIG_PROMOTING = 1, 0
