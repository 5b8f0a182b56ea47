-- A peer's RFC 7662 introspection (bench/peers.py): the client asks about access
-- tokens it was issued (500 from the peer's own token endpoint, drawn just before, each asked
-- about many times), authenticating with client_secret_basic as introspection.lua does.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local pool, i, headers, path
function init(args)
  local v = common.values()
  pool = common.pool("peer_tokens", tid, tonumber(os.getenv("BENCH_THREADS")))
  i = 0
  path = v.peer_introspect_path
  headers = common.headers({
    ["Authorization"] = v.peer_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  })
end

function request()
  i = i % #pool + 1
  return wrk.format("POST", path, headers, "token_type_hint=access_token&token=" .. pool[i])
end

function response(status, headers, body)
  common.count(status == 200 and body:find('"active": ?true') ~= nil, status)
end
