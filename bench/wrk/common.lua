-- Shared by every scenario script: seeded data, per-thread counters, and one
-- JSON line of results for bench/run.py.
--
-- bench/run.py passes BENCH_DATA (a directory written by bench/seed.py):
--   values.txt      key<TAB>value lines (client ids, Basic headers, cookies …)
--   <pool>.txt      one value a line (refresh tokens, access tokens, device codes)
-- Each wrk thread gets its own Lua state; setup() numbers the threads so a
-- thread takes only its own share of a pool (a refresh token is used once).

local M = {}

M.dir = os.getenv("BENCH_DATA") or "."
M.threads = {}
local thread_count = 0

function M.values()
  local values = {}
  for line in io.lines(M.dir .. "/values.txt") do
    local key, value = line:match("^([^\t]+)\t(.*)$")
    if key then values[key] = value end
  end
  return values
end

-- The lines of a pool file that belong to this thread (every nth line).
function M.pool(name, tid, nthreads)
  local items, i = {}, 0
  for line in io.lines(M.dir .. "/" .. name .. ".txt") do
    if i % nthreads == tid then items[#items + 1] = line end
    i = i + 1
  end
  return items
end

-- Headers every request carries: the proxy's scheme (the IdP trusts one hop,
-- IDP_PROXY_HOPS=1, so Authlib sees the https issuer's scheme).
function M.headers(extra)
  local h = { ["X-Forwarded-Proto"] = "https" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

function M.form(fields)
  local parts = {}
  for _, kv in ipairs(fields) do
    parts[#parts + 1] = kv[1] .. "=" .. M.urlencode(kv[2])
  end
  return table.concat(parts, "&")
end

function M.urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- Called from the main state for each thread before it starts.
function M.setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(M.threads, thread)
end

-- Per-thread counters (globals, so done() can read them with thread:get).
ok_count = 0
bad_count = 0
units = 0          -- scenario units: flows, events … (0 means "requests")
statuses = {}
notes = {}

function M.count(ok, status)
  if ok then ok_count = ok_count + 1 else bad_count = bad_count + 1 end
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function M.note(name)
  notes[name] = (notes[name] or 0) + 1
end

local function json(value)
  local t = type(value)
  if t == "table" then
    local parts = {}
    for k, v in pairs(value) do
      parts[#parts + 1] = string.format("%q:%s", tostring(k), json(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" then
    return string.format("%.17g", value)
  else
    return string.format("%q", tostring(value))
  end
end

function M.done(summary, latency, requests)
  local ok, bad, total_units = 0, 0, 0
  local all_statuses, all_notes = {}, {}
  for _, thread in ipairs(M.threads) do
    ok = ok + (thread:get("ok_count") or 0)
    bad = bad + (thread:get("bad_count") or 0)
    total_units = total_units + (thread:get("units") or 0)
    for k, v in pairs(thread:get("statuses") or {}) do
      all_statuses[k] = (all_statuses[k] or 0) + v
    end
    for k, v in pairs(thread:get("notes") or {}) do
      all_notes[k] = (all_notes[k] or 0) + v
    end
  end
  local e = summary.errors
  local result = {
    duration_us = summary.duration,
    requests = summary.requests,
    ok = ok,
    unexpected = bad,
    units = total_units,
    socket_errors = e.connect + e.read + e.write + e.timeout,
    socket_detail = { connect = e.connect, read = e.read, write = e.write,
                      timeout = e.timeout, status = e.status },
    statuses = all_statuses,
    notes = all_notes,
    latency_us = {
      p50 = latency:percentile(50), p90 = latency:percentile(90),
      p99 = latency:percentile(99), max = latency.max, mean = latency.mean,
    },
  }
  io.write("BENCH_JSON " .. json(result) .. "\n")
end

return M
