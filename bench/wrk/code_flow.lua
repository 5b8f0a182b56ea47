-- The full code flow of a signed-in resident with a remembered consent:
-- GET /authorize (session cookie) → 302 with a code → POST /token (code,
-- PKCE verifier) → access token and ID token → GET /userinfo.
--
-- Run with one connection per thread (wrk -t N -c N): each thread's Lua state
-- then drives exactly one connection through its own state machine. Every flow
-- has a fresh nonce (nonces are checked for replay per client); ``units``
-- counts completed flows.
package.path = (os.getenv("BENCH_WRK") or "bench/wrk") .. "/?.lua;" .. package.path
local common = require "common"
setup, done = common.setup, common.done

local v, step, n, code, access, run, token_headers
function init(args)
  v = common.values()
  step, n = "authorize", 0
  run = os.getenv("BENCH_RUN_ID") or "run"
  token_headers = common.headers({
    ["Authorization"] = v.rp_basic,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  })
end

function request()
  if step == "token" then
    return wrk.format("POST", "/token", token_headers, common.form({
      { "grant_type", "authorization_code" }, { "code", code },
      { "redirect_uri", v.redirect_uri }, { "code_verifier", v.code_verifier } }))
  elseif step == "userinfo" then
    return wrk.format("GET", "/userinfo",
      common.headers({ ["Authorization"] = "Bearer " .. access }))
  end
  n = n + 1
  local query = common.form({
    { "response_type", "code" }, { "client_id", v.rp_id },
    { "redirect_uri", v.redirect_uri }, { "scope", v.flow_scope },
    { "state", "s" .. n }, { "nonce", string.format("%s-%d-%d", run, tid, n) },
    { "code_challenge", v.code_challenge }, { "code_challenge_method", "S256" } })
  return wrk.format("GET", "/authorize?" .. query,
    common.headers({ ["Cookie"] = v.session_cookie }))
end

function response(status, headers, body)
  if step == "authorize" then
    local location = headers["Location"] or headers["location"] or ""
    code = location:match("[?&]code=([^&]+)")
    local ok = status == 302 and code ~= nil
    common.count(ok, status)
    if ok then step = "token" end
  elseif step == "token" then
    access = body:match('"access_token"%s*:%s*"([^"]+)"')
    local ok = status == 200 and access ~= nil and body:find('"id_token"', 1, true) ~= nil
    common.count(ok, status)
    step = ok and "userinfo" or "authorize"
  else
    local ok = status == 200 and body:find('"sub"', 1, true) ~= nil
    common.count(ok, status)
    if ok then units = units + 1 end
    step = "authorize"
  end
end
