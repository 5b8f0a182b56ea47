"""Security headers on every response."""

from __future__ import annotations

from flask import Flask
from flask import Response
from flask import request

from idp.config import Settings

# No inline script or style anywhere; nothing may frame us. form-action is left
# open on purpose: Chromium applies it to the redirect back to the client after
# the consent form posts (see STYLE.md §4).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def init_app(app: Flask, settings: Settings) -> None:
    # The headers every answer carries unless its view set its own (lower-cased names
    # to look up, the header to add). Added in one pass over the answer's headers:
    # one werkzeug ``setdefault`` per header scanned them all each time, 6 % of a
    # token request's Python calls (docs/performance.md).
    defaults = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
                ("Cross-Origin-Opener-Policy", "same-origin")]
    if settings.secure_cookies:
        defaults.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    defaults = [(name.lower(), (name, value)) for name, value in defaults]
    # Pages and API answers about a person are never cached; the static
    # files, discovery and JWKS set their own caching.
    no_store = [("pragma", ("Pragma", "no-cache")),
                ("cache-control", ("Cache-Control", "no-store"))]

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        present = {name.lower() for name, _ in headers}  # werkzeug: (name, value) pairs
        missing = [header for name, header in defaults if name not in present]
        if "cache-control" not in present and not request.path.startswith("/static/"):
            missing.extend(header for name, header in no_store if name not in present)
        headers.extend(missing)
        return response
