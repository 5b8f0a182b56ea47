-- The bare-Flask ceiling: GET / (bench/hello.py).
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  req = wrk.format("GET", "/", common.headers())
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200, status)
end
