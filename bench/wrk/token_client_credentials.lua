-- POST /token grant_type=client_credentials (client_secret_basic), the company's backend.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  local v = common.values()
  req = wrk.format("POST", "/token", common.headers({
    ["Authorization"] = v.backend_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }), "grant_type=client_credentials&scope=touch_events")
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200 and body:find('"access_token"', 1, true) ~= nil, status)
end
