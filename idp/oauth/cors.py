"""CORS for the endpoints a browser-based (public) client calls (Fetch Standard §3.2).

One table says which endpoints answer cross-origin, and to whom:

- ``PUBLIC``  discovery (OpenID and SSF), JWKS and the OpenAPI document hold nothing about anyone:
              ``Access-Control-Allow-Origin: *``.
- ``CLIENT``  token, UserInfo and revocation answer the origins of the requesting
              client's registered redirect URIs, and only those. The client is the
              one the endpoint identified (``g.oauth_client``: the authenticated
              client, the client a token belongs to, or the client a failed
              authentication named), else the one the request names.

A preflight (``OPTIONS``) carries no client id, so it is allowed for an origin
that some active client registered; the actual request is then checked against
its own client. Nothing else answers CORS: not ``/authorize`` or any HTML page
(top-level navigations), not introspection (confidential resource servers call
it from their back ends, never from a browser), not device authorization
(kiosks are devices). No cookies are involved, so credentials are never allowed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import g
from flask import request
from sqlalchemy import select

from idp.clients.models import Client
from idp.clients.models import Company
from idp.clients.models import CompanyStatus
from idp.extensions import db
from idp.oauth.client_auth import claimed_client_id

PUBLIC: dict[str, tuple[str, ...]] = {
    "oauth.discovery": ("GET",),
    "oauth.ssf_configuration": ("GET",),
    "oauth.jwks": ("GET",),
    "oauth.openapi": ("GET",),
}
CLIENT: dict[str, tuple[str, ...]] = {
    "oauth.token": ("POST",),
    "oauth.userinfo": ("GET", "POST"),
    "oauth.revoke": ("POST",),
}
ALLOW_HEADERS = "Authorization, Content-Type"
# Browsers cap this anyway (Chromium: 2 h); short, so a revoked client's origin
# stops being allowed at the preflight soon after.
MAX_AGE = "600"


def origin_of(uri: str) -> str | None:
    """The origin (RFC 6454 §4) of an absolute http(s) URI, as browsers send it."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def client_origins(client: Client) -> set[str]:
    return {o for o in map(origin_of, client.redirect_uris) if o}


def registered_origin(origin: str) -> bool:
    """Whether some active client registered a redirect URI at this origin."""
    rows = db.session.scalars(
        select(Client.redirect_uris).join(Company)
        .where(Client.revoked_at.is_(None), Company.status == CompanyStatus.ACTIVE))
    return any(origin in {origin_of(u) for u in uris} for uris in rows)


def _client() -> Client | None:
    client = g.get("oauth_client")
    if client is None and request.endpoint != "oauth.userinfo":
        server = current_app.extensions["idp.oauth"]
        claimed = claimed_client_id(server.create_oauth2_request(request))
        client = server.query_client(claimed) if claimed else None
    return client if client is not None and client.is_active else None


def answer_preflight():
    """``before_request``: the preflight of a CORS endpoint, answered here."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    origin = request.headers.get("Origin")
    if request.endpoint in PUBLIC:
        methods = PUBLIC[request.endpoint]
        allowed = "*"
    elif request.endpoint in CLIENT and origin and registered_origin(origin):
        methods = CLIENT[request.endpoint]
        allowed = origin
    else:
        return None  # Flask's own OPTIONS answer, without CORS headers
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = allowed
    response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def add_headers(response: Response) -> Response:
    """``after_request``: CORS headers on the actual responses of CORS endpoints."""
    if request.method == "OPTIONS":
        if request.endpoint in CLIENT:
            response.vary.add("Origin")
        return response
    if request.endpoint in PUBLIC:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif request.endpoint in CLIENT:
        # The answer depends on Origin, whether or not it carries CORS headers.
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        client = _client() if origin else None
        if client is not None and origin in client_origins(client):
            response.headers["Access-Control-Allow-Origin"] = origin
            # Lets the page read RFC 6750 challenges (invalid_token).
            response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    return response


def init_blueprint(bp: Blueprint) -> None:
    bp.before_request(answer_preflight)
    bp.after_request(add_headers)
