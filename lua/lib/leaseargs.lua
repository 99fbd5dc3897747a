-- lib/leaseargs.lua -- library: the argument list of the scripts that name
-- leases the caller holds (not run on its own).
--
-- KEYS: none. ARGV: read as "N, then N pairs: job id, lease token" from
-- ARGV[first] on (start.lua, heartbeat.lua). Includes: none. Events: none.

-- The leases named in ARGV from index `first`: ids and tokens (tables of N
-- strings each), or nil when the count is not a number or ARGV does not
-- hold exactly N pairs after it.
local function lease_args(first)
  local n = tonumber(ARGV[first])
  if not n or #ARGV ~= first + 2 * n then return nil end
  local ids, tokens = {}, {}
  for i = 0, n - 1 do
    ids[i + 1] = ARGV[first + 1 + 2 * i]
    tokens[i + 1] = ARGV[first + 2 + 2 * i]
  end
  return ids, tokens
end
