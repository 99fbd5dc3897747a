-- lib/stats.lua -- library: per-task run-time statistics and the learned
-- run-time estimate (not run on its own).
--
-- KEYS: reads/writes taskstats (KEYS[11], lib/keys.lua). ARGV: none of its own.
--@include lib/keys.lua
--@include lib/util.lua
--
-- One field per task in P:{Q}:taskstats: "n,mean,var,last_ms,last_duration"
-- (n runs; mean and variance of the duration in ms, '%.17g' text, exact;
-- last_ms the server time the last run finished; last_duration in ms).
-- scheduler/learning.py reads the same layout and mirrors every float
-- operation, so Python and Lua agree bit for bit.
--
-- Update (weighted Welford): alpha_n = max(1/n, 1/STATS_WINDOW),
--   diff = x - mean; incr = alpha_n * diff; mean = mean + incr;
--   var = (1 - alpha_n) * (var + diff * incr)
-- (T. Finch, "Incremental calculation of weighted mean and variance", 2009,
-- eqs. 122-143; D. H. D. West, CACM 22(9), 1979). With alpha_n = 1/n this is
-- exactly Welford's method (B. P. Welford, Technometrics 4(3), 1962; Knuth,
-- TAOCP vol. 2, 4.2.2) for the population variance: the first STATS_WINDOW
-- runs give the exact mean and variance; afterwards the weights decay
-- exponentially, so the statistics follow a task whose run time drifts
-- (effective memory about STATS_WINDOW runs). Numerically stable: no sums
-- of squares are kept.
local STATS_WINDOW = 100

-- A stats field decoded: n, mean, var, last_ms, last_duration; nil when
-- absent or damaged (not five numbers, negative, or not finite) -- a damaged
-- row starts again from the next run instead of failing the call.
local function stats_decode(row)
  if not row then return nil end
  local n, mean, var, last, lastd = string.match(row, '^([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)$')
  n, mean, var, last, lastd = tonumber(n), tonumber(mean), tonumber(var), tonumber(last), tonumber(lastd)
  if not (n and mean and var and last and lastd) then return nil end
  -- (comparisons, no table: this runs in every complete call)
  local inf = math.huge
  if not (mean >= 0 and mean < inf and var >= 0 and var < inf and last >= 0 and last < inf
          and lastd >= 0 and lastd < inf and n >= 1 and n < inf and n % 1 == 0) then
    return nil
  end
  return n, mean, var, last, lastd
end

local function stats_encode(n, mean, var, last, lastd)
  return string.format('%d,%.17g,%.17g,%d,%d', n, mean, var, last, lastd)
end

-- Record durations: run k of `tasks[k]` took `durations[k]` ms and
-- finished at `finished_ms` (the calling script's server time), in this
-- order. One HMGET and one HSET for the whole batch; the runs of one task
-- update its row in order (the same float operations as
-- scheduler/learning.py update_stats, run by run).
local function stats_record(tasks, durations, finished_ms)
  if #tasks == 0 then return end
  local names, state = {}, {}
  for _, task in ipairs(tasks) do
    if not state[task] then
      names[#names + 1] = task
      state[task] = true
    end
  end
  local rows = redis.call('HMGET', K_TASKSTATS, unpack(names))
  for i, task in ipairs(names) do
    local n, mean, var = stats_decode(rows[i] or nil)
    state[task] = n and {n, mean, var, 0} or {0, 0, 0, 0}
  end
  local w = 1 / STATS_WINDOW
  for k, task in ipairs(tasks) do
    local s, x = state[task], durations[k]
    local n = s[1] + 1
    local a = 1 / n
    if a < w then a = w end
    local diff = x - s[2]
    local incr = a * diff
    s[1], s[2], s[3], s[4] = n, s[2] + incr, (1 - a) * (s[3] + diff * incr), x
  end
  local hset = {}
  for _, task in ipairs(names) do
    local s = state[task]
    hset[#hset + 1] = task
    hset[#hset + 1] = stats_encode(s[1], s[2], s[3], finished_ms, s[4])
  end
  redis.call('HSET', K_TASKSTATS, unpack(hset))
end

-- The learned run time, seconds: mean * (1 + alpha * cv), cv = sd / mean
-- (the coefficient of variation), i.e. mean + alpha standard deviations.
-- Mirrors scheduler/learning.py estimated_time operation for operation.
-- Returns est_s, mean_s, cv.
local function stats_estimate(n, mean, var, alpha)
  local cv = 0
  if mean > 0 then cv = math.sqrt(var) / mean end
  local mean_s = mean / 1000
  local est = mean_s * (1 + alpha * cv)
  -- Durations are whole ms: a mean of 0 means "under a millisecond".
  if est < 0.001 then est = 0.001 end
  return est, mean_s, cv
end

-- Resolve the "auto" priority inputs of new jobs in place. `jobs` is a list
-- of {task, priority_text, inputs_text} whose inputs are either "w,t,r"
-- (declared time: unchanged) or "w,t,r,alpha,min_samples" (auto, t the
-- fallback). An auto job gets, from the task's statistics read here (one
-- HMGET for the call):
--   inputs   "w,est,r,alpha,min_samples,n,mean_s,cv" (est = the time used)
--   priority w * est / r ('%.17g' text, exact)
-- where est = stats_estimate(...) once n >= min_samples, else t (then the
-- priority text is left as the client computed it). A non-finite product
-- also falls back to t.
local function stats_resolve(jobs)
  local tasks, index = {}, {}
  for _, job in ipairs(jobs) do
    local parts = select(2, string.gsub(job[3], ',', ','))
    if parts == 4 and not index[job[1]] then
      tasks[#tasks + 1] = job[1]
      index[job[1]] = #tasks
    end
  end
  if #tasks == 0 then return end
  local rows = redis.call('HMGET', K_TASKSTATS, unpack(tasks))
  for _, job in ipairs(jobs) do
    local w, t, r, alpha, min = string.match(job[3], '^([^,]+),([^,]+),([^,]+),([^,]+),([^,]+)$')
    if w then
      local n, mean, var = stats_decode(rows[index[job[1]]] or nil)
      local est, mean_s, cv = tonumber(t), 0, 0
      if n then
        local e
        e, mean_s, cv = stats_estimate(n, mean, var, tonumber(alpha))
        if n >= tonumber(min) then
          local p = tonumber(w) * e / tonumber(r)
          if p == p and p > -math.huge and p < math.huge then
            est = e
            job[2] = string.format('%.17g', p)
          end
        end
      else
        n = 0
      end
      job[3] = string.format('%s,%.17g,%s,%s,%s,%d,%.17g,%.17g', w, est, r, alpha, min, n, mean_s, cv)
    end
  end
end
