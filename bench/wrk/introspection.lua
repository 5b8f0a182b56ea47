-- POST /introspect: the company's backend asks about its RP's access tokens.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local pool, i, headers
function init(args)
  local v = common.values()
  pool = common.pool("access_tokens", tid, tonumber(os.getenv("BENCH_THREADS")))
  i = 0
  headers = common.headers({
    ["Authorization"] = v.backend_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  })
end

function request()
  i = i % #pool + 1
  return wrk.format("POST", "/introspect", headers,
    "token_type_hint=access_token&token=" .. pool[i])
end

function response(status, headers, body)
  common.count(status == 200 and body:find('"active": ?true') ~= nil, status)
end
