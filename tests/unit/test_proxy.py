"""Forwarded headers are trusted from the configured proxies only (idp.proxy)."""

from __future__ import annotations

import pytest
from flask import jsonify
from flask import request

from idp import create_app
from idp.config import Settings
from idp.config import SettingsError
from idp.proxy import TrustedProxies
from idp.proxy import parse_networks
from tests.helpers.app import TEST_SETTINGS

SPOOFED = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
           "X-Forwarded-Host": "evil.example"}


def whoami_app(migrated, **overrides):
    app = create_app({**TEST_SETTINGS, "database_url": migrated, **overrides})

    @app.get("/_whoami")
    def whoami():
        return jsonify(addr=request.remote_addr, scheme=request.scheme, host=request.host)

    return app


def ask(app, peer: str):
    return app.test_client().get("/_whoami", headers=SPOOFED,
                                 environ_base={"REMOTE_ADDR": peer}).json


def test_headers_from_a_trusted_proxy_are_applied(migrated):
    """Test that a request from the configured proxy gets the client's address, scheme and host."""
    app = whoami_app(migrated, trusted_proxies="127.0.0.1", proxy_hops=1)
    assert ask(app, "127.0.0.1") == {"addr": "198.51.100.7", "scheme": "https",
                                     "host": "evil.example"}


def test_headers_from_anyone_else_are_ignored(migrated):
    """Test that the same headers sent directly by another address change nothing."""
    app = whoami_app(migrated, trusted_proxies="127.0.0.1", proxy_hops=1)
    assert ask(app, "203.0.113.5") == {"addr": "203.0.113.5", "scheme": "http",
                                       "host": "localhost"}


def test_networks_and_at_least_one_hop(migrated):
    """Test that CIDR networks are accepted and that proxy_hops=0 still trusts one hop."""
    app = whoami_app(migrated, trusted_proxies="10.0.0.0/8, ::1", proxy_hops=0)
    assert ask(app, "10.1.2.3")["addr"] == "198.51.100.7"
    assert ask(app, "::1")["scheme"] == "https"
    assert ask(app, "11.0.0.1")["addr"] == "11.0.0.1"


def test_without_trusted_proxies_hops_count_by_position(migrated):
    """Test the older setting alone: proxy_hops trusts the last values whoever sends them."""
    app = whoami_app(migrated, proxy_hops=1)
    assert ask(app, "203.0.113.5")["addr"] == "198.51.100.7"
    assert ask(whoami_app(migrated), "203.0.113.5")["addr"] == "203.0.113.5"


def test_only_the_last_hop_is_taken_from_a_trusted_proxy():
    """Test that a client's own X-Forwarded-For entries before the proxy's are not believed."""
    seen = {}

    def inner(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    middleware = TrustedProxies(inner, parse_networks("127.0.0.1"), hops=1)
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7, 192.0.2.10",
               "wsgi.url_scheme": "http", "HTTP_HOST": "node", "SERVER_NAME": "node",
               "SERVER_PORT": "80"}
    middleware(environ, lambda *a: None)
    assert seen["REMOTE_ADDR"] == "192.0.2.10"


def test_untrusted_request_loses_every_forwarded_header():
    """Test that nothing downstream can read a forwarded header an untrusted peer sent."""
    seen = {}

    def inner(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    middleware = TrustedProxies(inner, parse_networks("127.0.0.1"))
    middleware({"REMOTE_ADDR": "192.0.2.1", "HTTP_FORWARDED": "for=1.2.3.4",
                "HTTP_X_FORWARDED_FOR": "1.2.3.4", "HTTP_X_FORWARDED_PORT": "443"},
               lambda *a: None)
    assert not [k for k in seen if "FORWARDED" in k]


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1/40", "1.2.3"])
def test_invalid_trusted_proxies_are_refused(value):
    """Test that a trusted_proxies entry that is not an address or network stops the app."""
    with pytest.raises(SettingsError, match="trusted_proxies"):
        Settings.load({**TEST_SETTINGS, "trusted_proxies": value})
