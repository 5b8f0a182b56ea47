"""Demo signage kiosk: "北2条広場サイネージ" (C社), a public screen that signs in with Machi ID.

Like ``demo.relying_party`` this is a *demo client*, not part of the identity provider: its own
process (port 5003 by default) that talks to the IdP over the public protocol only — the device
authorization grant (RFC 8628) and ``POST /api/touch-events``. While waiting, a small script
(``demo/static/kiosk.js``) asks ``/status.json`` every ``interval`` seconds — each request polls the
token endpoint once, never faster than the IdP's ``interval`` — counts down to the code's expiry,
and swaps in the page's new content when the state changes (signed in, a new code), without
reloading the page. Without JavaScript the page reloads itself as before (``<meta
http-equiv=refresh>`` inside ``<noscript>``). The page speaks one language at a time: Japanese, or
English with ``?lang=en``.

    python -m demo.kiosk --issuer http://127.0.0.1:5000 --client-id ID --client-secret S

One screen, one resident at a time; the state lives in this process's memory. "Finish" revokes
the resident's token at ``/revoke`` (RFC 7009) before the next person; when the IdP says the
session ended (idle or too long, docs/kiosk.md), the screen starts over the same way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import logging
import os
import secrets
import threading
import time

import requests
from flask import Flask
from flask import abort
from flask import jsonify
from flask import redirect
from flask import render_template_string
from flask import request
from flask import url_for
from markupsafe import Markup
from werkzeug.serving import run_simple

from idp.locales import japan_clock

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_TITLE = "北2条広場サイネージ"
CONTENTS = ("観光マップ", "イベント情報", "バス時刻表", "防災情報")


def create_app(issuer: str, client_id: str, client_secret: str,
               title: str = DEFAULT_TITLE) -> Flask:
    app = Flask(__name__)  # serves demo/static/kiosk.js

    def language() -> str:
        return "en" if request.args.get("lang") == "en" else "ja"
    issuer = issuer.rstrip("/")
    auth = (client_id, client_secret)
    csrf = secrets.token_urlsafe(24)
    lock = threading.Lock()
    state: dict = {}
    # What this screen records, and for whom: its entry on the IdP's public transparency page
    # (a real kiosk prints it as a QR code on its frame).
    about = f"{issuer}/transparency#kiosk-{client_id}"

    def start(message: str | None = None) -> None:
        r = requests.post(f"{issuer}/device_authorization", auth=auth, timeout=10,
                          data={"scope": "openid touch_events"})
        r.raise_for_status()
        grant = r.json()
        qr = requests.get(f"{issuer}/device/qr/{grant['user_code']}.svg", timeout=10)
        svg = qr.text[qr.text.find("<svg"):] if qr.ok and "<svg" in qr.text else ""
        state.clear()
        state.update(grant=grant, svg=svg, interval=grant.get("interval", 5), polled=0.0,
                     expires=time.monotonic() + grant.get("expires_in", 600), token=None,
                     events=[], message=message)

    def poll() -> None:
        if time.monotonic() - state["polled"] < state["interval"]:
            return
        state["polled"] = time.monotonic()
        r = requests.post(f"{issuer}/token", auth=auth, timeout=10, data={
            "grant_type": GRANT, "device_code": state["grant"]["device_code"]})
        if r.ok:
            state["token"] = r.json()
            return
        error = r.json().get("error", f"HTTP {r.status_code}")
        if error == "slow_down":
            state["interval"] += 5
        elif error in ("access_denied", "expired_token"):
            state["message"] = error
            state["grant"] = None

    def end(message: str | None = None) -> None:
        """The resident is done: revoke their token (RFC 7009) and start over."""
        token = state.get("token")
        if token:
            try:
                requests.post(f"{issuer}/revoke", auth=auth, timeout=10, data={
                    "token": token["access_token"], "token_type_hint": "access_token"})
            except requests.RequestException:
                logging.getLogger(__name__).warning("revocation failed; the token expires "
                                                    "with the session's maximum length")
        state.clear()
        if message:
            state["message"] = message

    def _lang() -> dict:
        return {"lang": "en"} if request.form.get("lang") == "en" else {}

    def check_csrf():
        if not hmac.compare_digest(request.form.get("csrf", ""), csrf):
            abort(400)

    def refresh() -> str | None:
        """Start or poll the device grant as due; an error message when the IdP fails."""
        try:
            if not state.get("token"):
                if not state.get("grant") or time.monotonic() > state["expires"]:
                    start(state.get("message"))
                else:
                    poll()
                    if state["grant"] is None:  # declined or expired: a fresh QR
                        start(state["message"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            return str(exc)
        return None

    def remaining() -> int:
        return max(0, int(state.get("expires", 0) - time.monotonic()))

    @app.get("/")
    def index():
        lang = language()
        with lock:
            error = refresh()
            if error is not None:
                return render_template_string(PAGE, title=title, error=error, state={},
                                              about=about, t=TEXT[lang], lang=lang,
                                              csrf=csrf, contents=CONTENTS, svg="",
                                              remaining=0), 502
            svg = Markup(state["svg"])  # noqa: S704 - the IdP's own QR code (SVG)
            return render_template_string(PAGE, title=title, state=state, csrf=csrf, about=about,
                                          contents=CONTENTS, svg=svg, error=None,
                                          t=TEXT[lang], lang=lang, remaining=remaining())

    @app.get("/status.json")
    def status():
        """What the page's script polls: the state, the code on screen and its time left."""
        with lock:
            error = refresh()
            if error is not None:
                return jsonify(state="error"), 502
            signed_in = bool(state.get("token"))
            return jsonify(state="signed_in" if signed_in else "waiting",
                           code=None if signed_in else state["grant"]["user_code"],
                           interval=state.get("interval", 5),
                           expires_in=None if signed_in else remaining())

    @app.post("/touch")
    def touch():
        check_csrf()
        target = request.form.get("target", "")
        with lock:
            token = state.get("token")
            if not token or target not in CONTENTS:
                return redirect(url_for("index", **_lang()))
            now = dt.datetime.now(dt.UTC)
            try:
                r = requests.post(f"{issuer}/api/touch-events", timeout=10, json={
                    "events": [{"occurred_at": now.isoformat(), "target": target}]},
                    headers={"Authorization": f"Bearer {token['access_token']}"})
                result = f"HTTP {r.status_code}" + ("" if r.ok else f" {r.text[:200]}")
                if r.status_code == 401 or (r.status_code == 400 and "session_ended" in r.text):
                    end("session_ended")
                    return redirect(url_for("index", **_lang()))
            except requests.RequestException as exc:
                result = f"{type(exc).__name__}: {exc}"
            state["events"].insert(0, {"at": japan_clock(now),
                                       "target": target, "result": result})
        return redirect(url_for("index", **_lang()))

    @app.post("/reset")
    def reset():
        check_csrf()
        with lock:
            end()
        return redirect(url_for("index", **_lang()))

    return app


# One language per page, one language per sentence: Japanese (default) or English (?lang=en).
TEXT = {
    "ja": {
        "subtitle": "C社のデモ用サイネージ端末（Machi IDのデバイスフロー）",
        "unreachable": "IdPに接続できません。",
        "last_failed": "前回のログインは完了しませんでした。",
        "scan": "スマートフォンでQRコードを読み取り、コンソーシアムIDでログインしてください。",
        "or_open": "または、次のアドレスを開いてコードを入力してください：",
        "expires": "コードの有効期限まで、あと{m}分{s}秒です。",
        "expired": "コードの有効期限が切れました。新しいコードを表示します。",
        "checking": "承認されたかどうかを{n}秒ごとに確認しています。",
        "signed_in": "ログインしました。見たい情報をタッチしてください。"
                     "タッチはMachi IDの利用履歴に記録されます。",
        "logged": "記録したタッチ",
        "time": "時刻", "content": "コンテンツ", "result": "結果",
        "none_yet": "まだありません。",
        "finish": "終了して次の方へ",
        "about": "この画面が記録すること",
        "other_lang": "English", "other_code": "en",
    },
    "en": {
        "subtitle": "C社's demo signage kiosk (Machi ID device flow)",
        "unreachable": "The IdP is unreachable.",
        "last_failed": "The last sign-in did not complete.",
        "scan": "Scan the QR code with your phone and sign in with your consortium ID.",
        "or_open": "Or open this address and enter the code:",
        "expires": "The code expires in {m} min {s} s.",
        "expired": "The code has expired. A new code is on its way.",
        "checking": "This page checks for your approval every {n} s.",
        "signed_in": "Signed in. Touch what you want to see: each touch is logged to your "
                     "usage history at Machi ID.",
        "logged": "Touch events logged",
        "time": "Time", "content": "Content", "result": "Result",
        "none_yet": "None yet.",
        "finish": "Finish (next person)",
        "about": "What this screen records",
        "other_lang": "日本語", "other_code": "ja",
    },
}

PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{% if state and not state.token -%}
<noscript><meta http-equiv="refresh" content="{{ state.interval }}"></noscript>{% endif %}
<script src="{{ url_for('static', filename='kiosk.js') }}" defer></script>
<style>
body{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;max-width:60rem;
  margin:2rem auto;padding:0 1rem;color:#1f2933;line-height:1.6}
header{border-bottom:3px solid #0b6e4f;margin-bottom:1.5rem} h1{margin:.2rem 0}
.sub{color:#52606d;font-size:.9em}
.box{border:1px solid #cbd2d9;border-radius:8px;padding:1rem;margin:1rem 0}
.error{border-color:#c0392b;background:#fdecea} .ok{background:#e8f5e9}
.qr{width:min(22rem,90vw)} .qr svg{width:100%;height:auto}
.code{font-size:2rem;letter-spacing:.2em;font-weight:700}
.countdown{font-size:1.25rem;font-weight:700}
.btn{display:inline-block;background:#0b6e4f;color:#fff;border:0;border-radius:6px;
  padding:1rem 1.4rem;font-size:1.2rem;cursor:pointer;margin:.3rem .4rem .3rem 0}
.btn.end{background:#52606d;font-size:1rem;padding:.6rem 1rem} form{display:inline}
:focus-visible{outline:3px solid #005a9c;outline-offset:2px}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #e4e7eb;padding:.35rem;text-align:left}
</style></head><body>
<header><h1>{{ title }}</h1><p class="sub">{{ t.subtitle }}
<a href="?lang={{ t.other_code }}" lang="{{ t.other_code }}">{{ t.other_lang }}</a></p></header>
<main data-state="{{ 'error' if error else ('signed_in' if state.token else 'waiting') }}"
 data-code="{{ state.grant.user_code if state and state.grant and not state.token else '' }}">
{% if error %}<div class="box error"><p>{{ t.unreachable }}</p><code>{{ error }}</code></div>
{% elif not state.token %}
{% if state.message %}<div class="box error"><p>{{ t.last_failed }}
<code>{{ state.message }}</code></p></div>{% endif %}
<div class="box"><p>{{ t.scan }}</p>
<div class="qr" role="img"
 aria-label="QR: {{ state.grant.verification_uri_complete }}">{{ svg }}</div>
<p>{{ t.or_open }}
<a href="{{ state.grant.verification_uri }}">{{ state.grant.verification_uri }}</a></p>
<p class="code" id="user-code">{{ state.grant.user_code }}</p>
<p class="countdown" id="countdown" role="timer" aria-live="off"
 data-expires-in="{{ remaining }}" data-template="{{ t.expires }}"
 data-expired="{{ t.expired }}">
{{- t.expires.format(m=remaining // 60, s='%02d' % (remaining % 60)) }}</p>
<p class="sub" id="poll-note" data-interval="{{ state.interval }}">
{{- t.checking.format(n=state.interval) }}</p></div>
{% else %}
<div class="box ok"><p>{{ t.signed_in }}</p>
{% for c in contents %}<form method="post" action="{{ url_for('touch') }}"><input type="hidden"
 name="csrf" value="{{ csrf }}"><input type="hidden" name="lang" value="{{ lang }}"><input
 type="hidden" name="target" value="{{ c }}"><button class="btn">{{ c }}</button></form>
{%- endfor %}</div>
<h2>{{ t.logged }}</h2>
{% if state.events %}<table><tr><th>{{ t.time }}</th><th>{{ t.content }}</th>
<th>{{ t.result }}</th></tr>{% for e in state.events %}<tr><td>{{ e.at }}</td>
<td>{{ e.target }}</td><td>{{ e.result }}</td></tr>{% endfor %}</table>
{% else %}<p>{{ t.none_yet }}</p>{% endif %}
<form method="post" action="{{ url_for('reset') }}"><input type="hidden" name="csrf"
 value="{{ csrf }}"><input type="hidden" name="lang" value="{{ lang }}"><button
 class="btn end">{{ t.finish }}</button></form>
{% endif %}
<p><a href="{{ about }}">{{ t.about }}</a></p>
</main></body></html>"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Demo signage kiosk for Machi ID (not the IdP).")
    p.add_argument("--issuer", required=True, help="IdP issuer, e.g. http://127.0.0.1:5000")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", default=os.environ.get("DEMO_KIOSK_CLIENT_SECRET"),
                   help="or set DEMO_KIOSK_CLIENT_SECRET")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5003)
    p.add_argument("--title", default=DEFAULT_TITLE)
    args = p.parse_args(argv)
    if not args.client_secret:
        p.error("--client-secret (or DEMO_KIOSK_CLIENT_SECRET) is required")
    logging.basicConfig(level=logging.INFO)
    app = create_app(args.issuer, args.client_id, args.client_secret, args.title)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
