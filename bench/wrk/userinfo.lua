-- GET /userinfo with a resident's access token (openid name email).
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local reqs, i
function init(args)
  local pool = common.pool("access_tokens", tid, tonumber(os.getenv("BENCH_THREADS")))
  reqs, i = {}, 0
  for n, token in ipairs(pool) do
    reqs[n] = wrk.format("GET", "/userinfo",
      common.headers({ ["Authorization"] = "Bearer " .. token }))
  end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function response(status, headers, body)
  common.count(status == 200 and body:find('"sub"', 1, true) ~= nil, status)
end
