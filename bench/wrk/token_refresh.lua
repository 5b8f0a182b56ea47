-- POST /token grant_type=refresh_token: each seeded refresh token is used once
-- (rotation), so every thread walks its own share of the pool.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local pool, i, headers
function init(args)
  local v = common.values()
  pool = common.pool("refresh_tokens", tid, tonumber(os.getenv("BENCH_THREADS")))
  i = 0
  headers = common.headers({
    ["Authorization"] = v.rp_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  })
end

function request()
  i = i + 1
  if i > #pool then
    common.note("pool_exhausted")
    i = 1
  end
  return wrk.format("POST", "/token", headers,
    "grant_type=refresh_token&refresh_token=" .. pool[i])
end

function response(status, headers, body)
  common.count(status == 200 and body:find('"refresh_token"', 1, true) ~= nil, status)
end
