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
    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if settings.secure_cookies:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        # Pages and API answers about a person are never cached; the static
        # files, discovery and JWKS set their own caching.
        if "Cache-Control" not in headers and not request.path.startswith("/static/"):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response
