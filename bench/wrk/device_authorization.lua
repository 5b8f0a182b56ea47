-- POST /device_authorization: a kiosk starts a sign-in (RFC 8628 §3.1).
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  local v = common.values()
  req = wrk.format("POST", "/device_authorization", common.headers({
    ["Authorization"] = v.kiosk_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }), "scope=openid%20touch_events")
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200 and body:find('"device_code"', 1, true) ~= nil, status)
end
