-- lib/util.lua -- library included by every script (not run on its own).
--
-- KEYS: none. ARGV: none of its own. Includes: none.
--
-- Small helpers shared by the job and the schedule libraries.

-- Integer (Lua number) to its decimal string, exact below 2^53.
local function int(n)
  return string.format('%d', n)
end

-- The server's clock in integer milliseconds since the Unix epoch.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
