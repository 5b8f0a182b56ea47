-- POST /api/touch-events: batches of 100 touches with unique event ids, each
-- batch from the next of the seeded kiosks (their client_credentials tokens).
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local BATCH = 100
local tokens, occurred, run, n, k
function init(args)
  local v = common.values()
  occurred = v.occurred_at
  run = os.getenv("BENCH_RUN_ID") or "run"
  n, k = 0, tid
  tokens = {}
  for line in io.lines(common.dir .. "/kiosk_tokens.txt") do tokens[#tokens + 1] = line end
end

function request()
  local events = {}
  for e = 1, BATCH do
    n = n + 1
    events[e] = string.format(
      '{"occurred_at":"%s","target":"map-north","event_id":"%s-%d-%d"}', occurred, run, tid, n)
  end
  k = k % #tokens + 1
  return wrk.format("POST", "/api/touch-events", common.headers({
    ["Authorization"] = "Bearer " .. tokens[k],
    ["Content-Type"] = "application/json",
  }), '{"events":[' .. table.concat(events, ",") .. ']}')
end

function response(status, headers, body)
  local ok = status == 201 and body:find('"stored": ?100[,}]') ~= nil
  common.count(ok, status)
  if ok then units = units + BATCH end
end
