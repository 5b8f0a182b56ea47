"""Demo relying party: "A社 XXXサービス", a member company's app that signs in with Machi ID.

This is a *demo client*, not part of the identity provider. It runs as its own process
(port 5001 by default) and talks to the IdP only over the public OpenID Connect protocol:
discovery, authorization code flow with PKCE (S256), state and nonce (handled by Authlib's
Flask client), the RFC 9207 ``iss`` check, userinfo, refresh token and RP-initiated logout.

    python -m demo.relying_party --issuer http://127.0.0.1:5000 --client-id ID --client-secret S

Tokens stay on the server, in this process's memory; the browser cookie (``demo_rp_session_<port>``:
cookies do not keep ports apart, so two demo apps on 127.0.0.1 must not share one name;
signed with a per-process random key) holds only a random key into that store: Flask's cookie
is signed, not encrypted, so tokens in it would be readable in the browser, and larger tokens
can push it past the 4 KB cookie limit. Restarting this process signs everyone out.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import re
import secrets
from datetime import datetime
from urllib.parse import urljoin
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template_string
from flask import request
from flask import session
from flask import url_for
from werkzeug.serving import run_simple

log = logging.getLogger(__name__)

DEFAULT_TITLE = "A社 XXXサービス"
DEFAULT_SCOPE = "openid name birth_year gender email postal_code offline_access"
PERSONAL = ("sub", "name", "family_name", "given_name", "family_name#ja-Kana-JP",
            "given_name#ja-Kana-JP", "birthdate", "gender", "email", "email_verified",
            "address.postal_code", "address.locality")
PROTOCOL = {"iss", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "at_hash", "c_hash",
            "azp", "acr", "amr", "sid", "jti"}
TIMES = {"exp", "iat", "nbf", "auth_time"}
PROMPTS = {"consent", "login", "none"}
FRIENDLY = {
    "access_denied": "利用者が情報の提供に同意しませんでした。 / The resident declined to share "
                     "their information.",
    "login_required": "ログインが必要です。 / The resident is not signed in at the IdP.",
    "consent_required": "同意が必要です。 / Consent is needed first.",
    "invalid_issuer": "応答の発行者が一致しません。 / The response came from an unexpected issuer.",
    "mismatching_state": "ログイン要求が見つかりません（期限切れ・再読み込み）。 / The sign-in "
                         "request was not found (expired or reloaded).",
}


def _flatten(claims: dict | None) -> dict:
    out = {}
    for name, value in (claims or {}).items():
        if name == "address" and isinstance(value, dict):
            out.update({f"address.{k}": v for k, v in value.items()})
        else:
            out[name] = value
    return out


def _fmt(name: str, value) -> str:
    if name in TIMES and isinstance(value, int):
        return f"{value} ({datetime.fromtimestamp(value).astimezone():%Y-%m-%d %H:%M:%S %Z})"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # true/false/null, lists, objects


def claims_table(id_token_claims: dict | None, userinfo: dict | None) -> list[tuple[str, str, str]]:
    """Rows (claim, source, value): personal claims first, protocol claims last.

    ``address`` is flattened to ``address.postal_code`` etc. A claim with the same value in
    both sources is one row; differing values get one row per source.
    """
    idt, info = _flatten(id_token_claims), _flatten(userinfo)

    def order(name):
        if name in PERSONAL:
            return (0, PERSONAL.index(name), name)
        return (2 if name in PROTOCOL else 1, 0, name)

    rows = []
    for name in sorted(set(idt) | set(info), key=order):
        if name in idt and name in info and idt[name] == info[name]:
            rows.append((name, "ID token + userinfo", _fmt(name, idt[name])))
            continue
        rows += [(name, src, _fmt(name, c[name]))
                 for src, c in (("ID token", idt), ("userinfo", info)) if name in c]
    return rows


def create_app(issuer: str, client_id: str, client_secret: str, redirect_uri: str,
               title: str = DEFAULT_TITLE, scope: str = DEFAULT_SCOPE,
               contributes: dict[str, object] | None = None) -> Flask:
    """The demo app. ``contributes`` (category → value): the company also contributes
    registered data about the signed-in resident, as a member company's backend would:
    a client_credentials token with ``contribute:<category>``, then
    ``POST /api/registered-data`` naming the resident by this company's own ``sub``."""
    app = Flask(__name__)
    cookie = f"demo_rp_session_{urlsplit(redirect_uri).port or 80}"  # one per demo app
    app.config.update(SECRET_KEY=secrets.token_hex(32), SESSION_COOKIE_NAME=cookie,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True)
    home = urljoin(redirect_uri, "/")  # registered post-logout redirect, e.g. http://127.0.0.1:5001/
    store: dict[str, dict] = {}  # session key -> {claims, id_token, token, userinfo, ...}
    oauth = OAuth(app)
    oauth.register(
        name="machi", client_id=client_id, client_secret=client_secret,
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": scope, "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic"})
    machi = oauth.machi

    def metadata() -> dict:  # fetched lazily on first use; OIDC Discovery 4.3 issuer check
        meta = machi.load_server_metadata()
        if meta.get("issuer") != issuer:
            got = meta.get("issuer")
            raise OAuthError("invalid_issuer", f"metadata issuer {got!r} != {issuer!r}")
        return meta

    def current() -> dict | None:
        return store.get(session.get("sid", ""))

    def csrf_token() -> str:
        return session.setdefault("csrf", secrets.token_urlsafe(24))

    def check_csrf():
        sent = request.form.get("csrf", "")
        if not hmac.compare_digest(sent, session.get("csrf", "")) or not sent:
            abort(400)

    def load_userinfo(entry: dict) -> bool:
        # Only the access token: an expired token must show up as a 401, not be auto-refreshed.
        token = {"access_token": entry["token"]["access_token"], "token_type": "Bearer"}
        try:
            info = dict(machi.userinfo(token=token))
        except requests.HTTPError as exc:
            r = exc.response
            hint = r.headers.get("WWW-Authenticate")  # e.g. error="invalid_token"
            entry["userinfo_error"] = " — ".join(
                filter(None, [f"HTTP {r.status_code} {r.reason}", hint]))
            return False
        except (requests.RequestException, ValueError, OAuthError) as exc:
            entry["userinfo_error"] = f"{type(exc).__name__}: {exc}"
            return False
        if info.get("sub") != entry["claims"].get("sub"):  # OIDC Core 5.3.2
            entry["userinfo_error"] = "userinfo sub != ID token sub; response discarded"
            return False
        entry["userinfo"], entry["userinfo_error"] = info, None
        return True

    def page(status=200, **ctx):
        return render_template_string(PAGE, title=title, issuer=issuer,
                                      contributes=contributes or {}, **ctx), status

    def error_page(code, description, status=400):
        return page(status, error=(code or "error", description or "", FRIENDLY.get(code or "")))

    @app.get("/")
    def index():
        entry = current()
        locale = request.args.get("ui_locales", "")
        locale = locale if re.fullmatch(r"[A-Za-z0-9 -]{1,64}", locale) else ""
        if not entry:
            return page(entry=None, locale=locale)
        exp = entry["token"].get("expires_at")
        return page(entry=entry, rows=claims_table(entry["claims"], entry["userinfo"]),
                    expires=_fmt("exp", exp) if exp else "—", csrf=csrf_token())

    @app.get("/login")
    def login():
        params = {}
        locale = request.args.get("ui_locales", "")
        if re.fullmatch(r"[A-Za-z0-9 -]{1,64}", locale):
            params["ui_locales"] = locale
        if request.args.get("prompt") in PROMPTS:
            params["prompt"] = request.args["prompt"]
        try:
            metadata()
            return machi.authorize_redirect(redirect_uri, **params)
        except OAuthError as err:
            return error_page(err.error, err.description, 502)
        except (requests.RequestException, ValueError, RuntimeError) as exc:
            return error_page("idp_unreachable", f"{type(exc).__name__}: {exc}", 502)

    @app.get("/callback")
    def callback():
        try:
            meta = metadata()
            iss = request.args.get("iss")  # RFC 9207 mix-up defence, error responses too
            if iss is not None and iss != issuer:
                raise OAuthError("invalid_issuer", f"iss={iss!r}, expected {issuer!r}")
            if iss is None and meta.get("authorization_response_iss_parameter_supported"):
                raise OAuthError("invalid_issuer", "iss parameter missing from the response")
            token = machi.authorize_access_token()  # state, PKCE, ID token + nonce checks
            if not token.get("userinfo"):
                raise OAuthError("invalid_id_token", "the token response had no ID token")
        except OAuthError as err:
            return error_page(err.error, err.description)
        except Exception as exc:  # network, bad JSON, ID token signature/claims (joserfc)
            log.exception("callback failed")
            return error_page("callback_failed", f"{type(exc).__name__}: {exc}", 502)
        store.pop(session.get("sid", ""), None)
        session.clear()  # fresh key on every sign-in, no fixation
        entry = {"claims": dict(token["userinfo"]), "id_token": token["id_token"],
                 "token": {k: token.get(k) for k in
                           ("access_token", "refresh_token", "scope", "expires_at", "token_type")},
                 "userinfo": None, "userinfo_error": None}
        load_userinfo(entry)
        session["sid"] = secrets.token_urlsafe(32)
        store[session["sid"]] = entry
        return redirect(url_for("index"))

    @app.post("/contribute")
    def contribute():
        check_csrf()
        entry = current()
        if not entry or not contributes:
            return redirect(url_for("index"))
        try:
            meta = metadata()
            token = requests.post(
                meta["token_endpoint"], auth=(client_id, client_secret), timeout=10,
                data={"grant_type": "client_credentials",
                      "scope": " ".join(f"contribute:{k}" for k in contributes)})
            if token.status_code != 200:
                raise OAuthError(token.json().get("error", "token"),
                                 token.json().get("error_description", ""))
            # Collected at the first press of this sign-in; every later press sends the same
            # records (same record id and time), so contributing again is idempotent.
            now = entry.setdefault("collected_at",
                                   datetime.now().astimezone().isoformat(timespec="seconds"))
            sub = entry["claims"]["sub"]
            tag = hmac.new(b"demo", sub.encode(), "sha256").hexdigest()[:16]
            records = [{"sub": sub, "category": key, "value": value, "collected_at": now,
                        "record_id": f"demo-{key}-{tag}"} for key, value in contributes.items()]
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            answer = requests.post(urljoin(issuer.rstrip("/") + "/", "api/registered-data"),
                                   json={"records": records}, timeout=10, headers=bearer)
            body = answer.json()
        except (OAuthError, requests.RequestException, ValueError, KeyError) as exc:
            flash(f"登録データの提供に失敗 / Contribution failed: {exc}", "error")
            return redirect(url_for("index"))
        if answer.status_code == 201:
            flash(f"コンソーシアムへ登録データを提供しました / Registered data contributed: "
                  f"stored {body.get('stored')}, already held {body.get('duplicates')}.", "ok")
        else:
            flash(f"登録データの提供に失敗 / Contribution refused ({answer.status_code}): "
                  f"{body.get('error')}: {body.get('error_description')}", "error")
        return redirect(url_for("index"))

    @app.post("/refresh-userinfo")
    def refresh_userinfo():
        check_csrf()
        entry = current()
        if entry and load_userinfo(entry):
            flash("userinfo を再取得しました。 / userinfo fetched again.", "ok")
        elif entry:
            flash(f"userinfo の取得に失敗 / userinfo failed: {entry['userinfo_error']}", "error")
        return redirect(url_for("index"))

    @app.post("/refresh")
    def refresh():
        check_csrf()
        entry = current()
        if not entry:
            return redirect(url_for("index"))
        old = entry["token"]
        if not old.get("refresh_token"):
            flash("リフレッシュトークンがありません / No refresh token "
                  "(offline_access not granted).", "error")
            return redirect(url_for("index"))
        try:  # scope=None: omit scope, i.e. keep what the resident granted (RFC 6749 §6)
            new = machi.fetch_access_token(grant_type="refresh_token",
                                           refresh_token=old["refresh_token"], scope=None)
            if new.get("id_token"):  # OIDC Core 12.2: same subject
                claims = machi.parse_id_token(new, nonce=None)
                if claims.get("sub") != entry["claims"].get("sub"):
                    raise OAuthError("invalid_id_token", "refreshed ID token has another sub")
                entry["claims"], entry["id_token"] = dict(claims), new["id_token"]
        except OAuthError as err:
            flash(f"トークン更新に失敗 / Refresh failed: {err.error}: {err.description or ''}",
                  "error")
            return redirect(url_for("index"))
        except Exception as exc:
            log.exception("refresh failed")
            flash(f"トークン更新に失敗 / Refresh failed: {type(exc).__name__}: {exc}", "error")
            return redirect(url_for("index"))
        entry["token"] = {"access_token": new["access_token"], "token_type": new.get("token_type"),
                          "refresh_token": new.get("refresh_token") or old["refresh_token"],
                          "scope": new.get("scope") or old.get("scope"),
                          "expires_at": new.get("expires_at")}
        flash("トークンを更新しました。 / Token refreshed.", "ok")
        return redirect(url_for("index"))

    @app.get("/logout")
    def logout():
        entry = store.pop(session.get("sid", ""), None)
        session.clear()
        if not entry:
            return redirect(url_for("index"))
        try:
            metadata()
            url = machi.create_logout_url(post_logout_redirect_uri=home,
                                          id_token_hint=entry["id_token"], client_id=client_id)
        except Exception as exc:
            flash(f"IdP からはログアウトできませんでした / IdP logout unavailable: {exc}", "error")
            return redirect(url_for("index"))
        return redirect(url["url"])

    return app


PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;max-width:52rem;
  margin:2rem auto;padding:0 1rem;color:#1f2933;line-height:1.6}
header{border-bottom:3px solid #0b6e4f;margin-bottom:1.5rem} h1{margin:.2rem 0}
.en{color:#52606d;font-size:.9em;display:block} .btn .en{color:#fff}
.box{border:1px solid #cbd2d9;border-radius:8px;padding:1rem;margin:1rem 0}
.error{border-color:#c0392b;background:#fdecea} .ok{background:#e8f5e9}
.btn{display:inline-block;background:#0b6e4f;color:#fff;border:0;border-radius:6px;
  padding:.6rem 1rem;font-size:1rem;text-decoration:none;cursor:pointer;margin:.2rem .3rem .2rem 0}
.btn.sub{background:#52606d} form{display:inline} code{word-break:break-all}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e4e7eb;padding:.35rem;text-align:left;vertical-align:top}
</style></head><body>
<header><h1>{{ title }}</h1><span class="en">Demo member-company app — signs in with Machi ID</span>
</header>
{% for cat, msg in get_flashed_messages(with_categories=true) %}
<div class="box {{ 'error' if cat == 'error' else 'ok' }}">{{ msg }}</div>{% endfor %}
{% if error %}
<div class="box error">
<h2>ログインできませんでした<span class="en">Sign-in did not complete</span></h2>
{% if error[2] %}<p>{{ error[2] }}</p>{% endif %}
<p>エラーコード / Error code: <code>{{ error[0] }}</code></p>
{% if error[1] %}<p>説明 / Description: {{ error[1] }}</p>{% endif %}</div>
<p><a class="btn" href="{{ url_for('index') }}">トップへ戻る / Back to start</a></p>
{% elif not entry %}
<div class="box"><p>このサービスは、まちのコンソーシアムIDでログインできます。
お名前などの情報は、あなたが同意した項目だけが当社に提供されます。
<span class="en">This service accepts the city consortium ID. Only the items you agree to share
are passed to this company.</span></p>
<a class="btn" href="{{ url_for('login', ui_locales=locale or None) }}">コンソーシアムIDでログイン
<span class="en">Sign in with consortium ID</span></a></div>
{% else %}
<div class="box ok"><p>ログインしました / Signed in.</p>
<p>利用者ID (sub): <code>{{ entry.claims.sub }}</code><span class="en">This pairwise subject is
unique to this company: other companies see a different ID for the same resident, so
they cannot link their records.</span></p>
<p>許可された範囲 / Granted scope: <code>{{ entry.token.scope or '—' }}</code><br>
アクセストークン有効期限 / Access token expires: {{ expires }}<br>
リフレッシュトークン / Refresh token:
{{ 'あり / yes' if entry.token.refresh_token else 'なし / no' }}
</p></div>
{% if entry.userinfo_error %}<div class="box error">userinfo の取得に失敗 / userinfo failed:
<code>{{ entry.userinfo_error }}</code></div>{% endif %}
<h2>受け取った情報<span class="en">Claims received (issuer {{ issuer }})</span></h2>
<table><tr><th>項目 / Claim</th><th>取得元 / Source</th><th>値 / Value</th></tr>
{% for name, src, value in rows %}<tr><td><code>{{ name }}</code></td><td>{{ src }}</td>
<td>{{ value }}</td></tr>{% endfor %}</table>
<p>
<form method="post" action="{{ url_for('refresh_userinfo') }}"><input type="hidden" name="csrf"
 value="{{ csrf }}"><button class="btn">userinfo を再取得 / Call userinfo again</button></form>
<form method="post" action="{{ url_for('refresh') }}"><input type="hidden" name="csrf"
 value="{{ csrf }}"><button class="btn">トークンを更新 / Refresh token</button></form>
<a class="btn sub" href="{{ url_for('logout') }}">ログアウト / Sign out</a></p>
{% if contributes %}<div class="box"><h2>登録データの提供<span class="en">Contribute registered
data</span></h2><p>このサービスで登録された情報を、コンソーシアムへ登録データとして提供します
（あなたがコンソーシアムで収集を停止していない場合）。他社は、あなたが同意した場合にだけ受け取れます。
<span class="en">This service
passes what you registered here to the consortium as registered data, unless you stopped
collection there. Other companies receive it only if you consent.</span></p>
<table>{% for key, value in contributes.items() %}<tr><td><code>{{ key }}</code></td>
<td><code>{{ value | tojson }}</code></td></tr>{% endfor %}</table>
<form method="post" action="{{ url_for('contribute') }}"><input type="hidden" name="csrf"
 value="{{ csrf }}"><button class="btn">コンソーシアムへ提供 / Contribute</button></form></div>
{% endif %}
<details><summary>ID トークン (raw) / Raw ID token</summary><p><code>{{ entry.id_token }}</code>
</p></details>
{% endif %}
</body></html>"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Demo relying party for Machi ID (not the IdP).")
    p.add_argument("--issuer", required=True, help="IdP issuer, e.g. http://127.0.0.1:5000")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", default=os.environ.get("DEMO_RP_CLIENT_SECRET"),
                   help="or set DEMO_RP_CLIENT_SECRET")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5001)
    p.add_argument("--title", default=DEFAULT_TITLE)
    p.add_argument("--redirect-uri", help="default http://HOST:PORT/callback")
    p.add_argument("--scope", default=DEFAULT_SCOPE, help="the scopes to ask for")
    p.add_argument("--contribute", action="append", default=[], metavar="CATEGORY=JSON",
                   help="registered data this company contributes about the signed-in "
                        "resident (repeatable), e.g. language='\"ja\"'")
    args = p.parse_args(argv)
    contributes = {}
    for item in args.contribute:
        key, _, value = item.partition("=")
        try:
            contributes[key] = json.loads(value)
        except ValueError:
            p.error(f"--contribute {item}: the value must be JSON")
    if not args.client_secret:
        p.error("--client-secret (or DEMO_RP_CLIENT_SECRET) is required")
    logging.basicConfig(level=logging.INFO)
    redirect_uri = args.redirect_uri or f"http://{args.host}:{args.port}/callback"
    app = create_app(args.issuer, args.client_id, args.client_secret, redirect_uri, args.title,
                     args.scope, contributes)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
