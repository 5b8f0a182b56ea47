-- POST /login with the resident's email and password: argon2id bound by design.
-- bench/run.py fetched the form once; its cookie and CSRF token are replayed
-- (the token is bound to that cookie's session and valid for an hour).
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local req
function init(args)
  local v = common.values()
  req = wrk.format("POST", "/login", common.headers({
    ["Cookie"] = v.login_cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }), common.form({ { "email", v.email }, { "password", v.password },
                    { "csrf_token", v.login_csrf } }))
end

function request() return req end

function response(status, headers, body)
  common.count(status == 302, status)
end
