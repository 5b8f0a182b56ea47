-- A peer's token endpoint (bench/peers.py): client_credentials, client_secret_basic,
-- the same request as token_client_credentials.lua sends to Machi ID.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  local v = common.values()
  req = wrk.format("POST", v.peer_token_path, common.headers({
    ["Authorization"] = v.peer_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }), v.peer_token_body)
end

function request() return req end

function response(status, headers, body)
  common.count(status == 200 and body:find('"access_token"', 1, true) ~= nil, status)
end
