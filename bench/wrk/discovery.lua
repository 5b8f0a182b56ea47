-- GET /.well-known/openid-configuration
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  req = wrk.format("GET", "/.well-known/openid-configuration", common.headers())
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200 and body:find('"issuer"', 1, true) ~= nil, status)
end
