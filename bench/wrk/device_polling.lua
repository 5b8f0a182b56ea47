-- POST /token grant_type=device_code while the resident has not decided:
-- 400 authorization_pending is the expected answer (RFC 8628 §3.5). The pool is
-- large enough that each code is polled less often than its 5 s interval;
-- a slow_down (also a pending answer) is counted as a note.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local pool, i, headers
function init(args)
  local v = common.values()
  pool = common.pool("device_codes", tid, tonumber(os.getenv("BENCH_THREADS")))
  i = 0
  headers = common.headers({
    ["Authorization"] = v.kiosk_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  })
end

function request()
  i = i % #pool + 1
  return wrk.format("POST", "/token", headers,
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=" .. pool[i])
end

function response(status, headers, body)
  if status == 400 and body:find("authorization_pending", 1, true) then
    common.count(true, status)
  elseif status == 400 and body:find("slow_down", 1, true) then
    common.note("slow_down")
    common.count(true, status)
  else
    common.count(false, status)
  end
end
