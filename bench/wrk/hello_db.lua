-- The bare-Flask ceiling with one database round trip: GET /db (bench/hello.py).
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  req = wrk.format("GET", "/db", common.headers())
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200 and body == "hello 1", status)
end
