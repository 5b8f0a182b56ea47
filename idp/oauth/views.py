"""Protocol endpoints; each view hands the request to Authlib's server.

``/authorize`` is not here: its answer to a browser is decided by the
interaction (``idp.interaction.views.authorize``), which calls the protocol
half in ``idp.oauth.authorize``."""

from __future__ import annotations

from collections.abc import Callable

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify

from idp import config
from idp import scopes as registry
from idp.access import epoch
from idp.clients import cache as client_cache
from idp.extensions import commit_on_error
from idp.extensions import csrf
from idp.extensions import db
from idp.keys import service as keys
from idp.oauth import cors
from idp.oauth import security_events
from idp.oauth.discovery import document as discovery_document
from idp.oauth.openapi import document as openapi_document

bp = Blueprint("oauth", __name__)
cors.init_blueprint(bp)


@bp.errorhandler(OAuth2Error)
def oauth_error(error: OAuth2Error):
    """An OAuth error raised before a grant could catch it (e.g. insecure_transport)."""
    return _server().handle_error_response(None, error)


def _server():
    return current_app.extensions["idp.oauth"]


def _confirmed(answer: Callable[[], Response]) -> Response:
    """The answer, made with clients from this worker's cache on the assumption that
    the revocation epoch has not moved, and given only once the epoch the request's
    own statements read along says so (``idp.access.epoch``). If a cut-off committed
    since the cache was filled, what the request wrote is rolled back and it is
    answered again from the database: a stale cache never decides an answer."""
    epoch.defer()
    response = answer()
    if epoch.confirmed():
        return response
    db.session.rollback()
    epoch.restart()
    client_cache.cache_of(current_app._get_current_object()).forget()
    return answer()


@bp.before_request
def keep_protocol_errors():
    """An OAuth error answer (4xx) keeps what the endpoint wrote, like a success: a
    token family revoked on replay, the audit record of a refused request. The
    request's unit of work (``idp.extensions``) commits it after the view."""
    commit_on_error()


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    """OpenID Provider / RFC 8414 authorization server metadata."""
    body = discovery_document(config.settings(), registry.offered_by_families())
    response = current_app.response_class(body, mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/.well-known/ssf-configuration")
def ssf_configuration():
    """OpenID Shared Signals Framework 1.0 §7.1 transmitter metadata (security events)."""
    response = jsonify(security_events.metadata(config.settings()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/openapi.json")
def openapi():
    """OpenAPI description of the JSON APIs."""
    response = jsonify(openapi_document(config.settings()))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/jwks.json")
def jwks():
    """Public signing keys: pending, active and retired-but-still-verifying."""
    document = keys.jwks_document()
    response = jsonify(document)
    max_age = config.settings().jwks_cache_max_age
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


@bp.post("/token")
@csrf.exempt
def token():
    """Token endpoint: authorization_code, refresh_token, client_credentials.

    Rate-limited per client inside client authentication (idp.oauth.ratelimit)."""
    return _confirmed(lambda: _server().create_token_response())


@bp.post("/device_authorization")
@csrf.exempt
def device_authorization():
    """RFC 8628 device authorization: a kiosk asks for a device and a user code."""
    return _confirmed(lambda: _server().create_endpoint_response("device_authorization"))


@bp.post("/revoke")
@csrf.exempt
def revoke():
    """RFC 7009 revocation."""
    return _confirmed(lambda: _server().create_endpoint_response("revocation"))


@bp.post("/introspect")
@csrf.exempt
def introspect():
    """RFC 7662 introspection."""
    return _confirmed(lambda: _server().create_endpoint_response("introspection"))


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    """OIDC UserInfo: the consented claims of the token's resident."""
    return _server().create_endpoint_response("userinfo")
