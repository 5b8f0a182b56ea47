"""The transmitter's description (OpenID Shared Signals Framework 1.0 §7.1)."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from idp.access import security_events
from idp.clients.models import Client
from idp.extensions import db
from idp.oauth.security_events import security_event_token
from tests import factories


def test_ssf_configuration_describes_push_delivery_only(client):
    """Test that /.well-known/ssf-configuration names the spec version, the issuer, the
    JWKS and RFC 8935 push, and no stream management endpoint we do not offer."""
    response = client.get("/.well-known/ssf-configuration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.json == {
        "spec_version": "1_0",
        "issuer": "http://localhost",
        "jwks_uri": "http://localhost/jwks.json",
        "delivery_methods_supported": ["urn:ietf:rfc:8935"],
    }


def test_the_jwks_it_names_verifies_the_sets(client, app):
    """Test that a SET verifies with the keys at the jwks_uri the metadata names."""
    factories.resident()
    rp = factories.rp()
    jwks_path = client.get("/.well-known/ssf-configuration").json["jwks_uri"]
    keys = KeySet.import_key_set(client.get(jwks_path.removeprefix("http://localhost")).json)
    claims = {"aud": rp.client_id, "jti": "j1", "iat": 1,
              "sub_id": {"format": "iss_sub", "iss": "http://localhost", "sub": "s"},
              "events": {security_events.ACCOUNT_PURGED: {}}}
    token = security_event_token(claims, db.session.get(Client, rp.client_id),
                                 "http://localhost")
    assert jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims["jti"] == "j1"


def test_openapi_lists_the_ssf_configuration(client):
    """Test that the OpenAPI document describes /.well-known/ssf-configuration."""
    paths = client.get("/openapi.json").json["paths"]
    assert paths["/.well-known/ssf-configuration"]["get"]["operationId"] == "ssfConfiguration"
