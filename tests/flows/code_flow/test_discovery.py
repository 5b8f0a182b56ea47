"""OpenID Provider metadata (OIDC Discovery 1.0, RFC 8414)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from idp.config import Settings
from idp.oauth.discovery import metadata

OIDC_PATH = "/.well-known/openid-configuration"
RFC8414_PATH = "/.well-known/oauth-authorization-server"
ENDPOINT_KEYS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint")


@pytest.fixture
def document(client):
    response = client.get(OIDC_PATH)
    assert response.status_code == 200
    return response.json


def _path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://localhost", url
    return parts.path


def test_document_validates_as_openid_provider_metadata(document):
    """Test that the document passes Authlib's OpenID Provider metadata validation."""
    OpenIDProviderMetadata(document).validate()


def test_document_validates_as_rfc8414_metadata(document):
    """Test that the document passes Authlib's RFC 8414 metadata validation."""
    AuthorizationServerMetadata(document).validate()


def test_document_is_json_and_cacheable(client):
    """Test that discovery answers JSON with a public Cache-Control."""
    response = client.get(OIDC_PATH)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"].startswith("public")


def test_issuer_equals_settings_issuer(app, document):
    """Test that issuer is exactly the configured issuer."""
    assert document["issuer"] == app.extensions["idp.settings"].issuer == "http://localhost"


def test_every_endpoint_is_under_the_issuer(document):
    """Test that every advertised endpoint URL starts with the issuer."""
    for key in ENDPOINT_KEYS:
        assert document[key].startswith(document["issuer"] + "/"), key


def test_subject_types_are_pairwise_only(document):
    """Test that only pairwise subject identifiers are advertised."""
    assert document["subject_types_supported"] == ["pairwise"]


def test_code_challenge_methods_are_s256_only(document):
    """Test that PKCE is advertised with S256 only (no plain)."""
    assert document["code_challenge_methods_supported"] == ["S256"]


def test_authorization_response_iss_parameter_is_supported(document):
    """Test that RFC 9207 authorization_response_iss_parameter_supported is true."""
    assert document["authorization_response_iss_parameter_supported"] is True


def test_only_the_code_flow_is_advertised(document):
    """Test that response_types_supported is code only (no implicit or hybrid)."""
    assert document["response_types_supported"] == ["code"]


def test_signing_algorithms_match_the_keys(document):
    """Test that ID tokens are advertised as signed with RS256 and ES256, never none."""
    assert set(document["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}


def test_scopes_include_openid_and_consortium_items(document):
    """Test that scopes_supported lists openid and every consortium consent item."""
    assert {"openid", "name", "birth_year", "gender", "email", "postal_code",
            "offline_access"} <= set(document["scopes_supported"])


def test_every_advertised_url_is_routable(client, document):
    """Test that no URL in the document other than the issuer answers 404 on GET and POST."""
    urls = {key: value for key, value in document.items()
            if isinstance(value, str) and value.startswith("http") and key != "issuer"}
    assert set(ENDPOINT_KEYS) <= set(urls)
    for key, url in urls.items():
        path = _path(url)
        statuses = {client.get(path).status_code, client.post(path).status_code}
        assert statuses != {404}, (key, statuses)


def test_rfc8414_path_serves_the_same_document(client, document):
    """Test that /.well-known/oauth-authorization-server serves the same metadata."""
    response = client.get(RFC8414_PATH)
    assert response.status_code == 200
    assert response.json == document


def test_urls_follow_the_issuer_setting():
    """Test that the document's URLs are built from the issuer setting, not hard-coded."""
    other = Settings.load({"issuer": "https://idp.example.jp", "environment": "test"},
                          environ={})
    document = metadata(other)
    assert document["issuer"] == "https://idp.example.jp"
    assert document["token_endpoint"] == "https://idp.example.jp/token"
    assert document["jwks_uri"] == "https://idp.example.jp/jwks.json"
