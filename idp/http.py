"""What every answer goes through: security headers, and the signed session cookie."""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from idp.config import Settings

# No inline script or style anywhere; nothing may frame us. form-action is left
# open on purpose: Chromium applies it to the redirect back to the client after
# the consent form posts (see STYLE.md §4).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the signing serializer made once per set of
    keys instead of on every request: Flask builds it to open every session, also on
    requests that carry no cookie (every protocol request), and building it serialises
    an empty value to learn the serializer's type, 3 % of a token request
    (docs/performance.md). A new secret key (or fallback list) makes a new one."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = self._serializers[keys] = super().get_signing_serializer(app)
        return serializer


# Pages and API answers about a person are never cached; the static files, discovery
# and JWKS set their own caching.
NO_STORE = [("Pragma", "no-cache"), ("Cache-Control", "no-store")]


def security_headers(settings: Settings) -> list[tuple[str, str]]:
    """The headers every answer carries unless its view set its own."""
    headers = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
               ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
               ("Cross-Origin-Opener-Policy", "same-origin")]
    if settings.secure_cookies:
        headers.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    return headers


def init_app(app: Flask, settings: Settings) -> None:
    app.session_interface = CookieSessions()
    # The headers every answer carries unless its view set its own (lower-cased names
    # to look up, the header to add). Added in one pass over the answer's headers:
    # one werkzeug ``setdefault`` per header scanned them all each time, 6 % of a
    # token request's Python calls (docs/performance.md).
    defaults = [(name.lower(), (name, value)) for name, value in security_headers(settings)]
    no_store = [(name.lower(), (name, value)) for name, value in NO_STORE]

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _ in headers}  # werkzeug: (name, value) pairs
        missing = [header for name, header in defaults if name not in present]
        if "cache-control" not in present and not request.path.startswith("/static/"):
            missing.extend(header for name, header in no_store if name not in present)
        headers.extend(missing)
        return response
