-- GET /jwks.json
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  req = wrk.format("GET", "/jwks.json", common.headers())
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200 and body:find('"keys"', 1, true) ~= nil, status)
end
