"""Who a protocol request counts against, for rate limits (RFC 9700 §4.x, RFC 8628 §5.1).

The token endpoint is limited per client: its identifier comes from HTTP Basic
credentials or the form, before any authentication (a wrong secret still
counts). Without one, the client's address counts.
"""

from __future__ import annotations

import base64
import binascii

from flask import current_app
from flask import request
from flask_limiter.util import get_remote_address


def client_key() -> str:
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode("utf-8", "replace")
            return "client:" + decoded.split(":", 1)[0][:64]
        except (binascii.Error, ValueError):
            pass
    client_id = request.form.get("client_id")
    if client_id:
        return "client:" + client_id[:64]
    return "address:" + (get_remote_address() or "unknown")


def token_limit() -> str:
    return current_app.extensions["idp.settings"].token_rate_limit
