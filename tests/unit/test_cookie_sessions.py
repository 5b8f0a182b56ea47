"""The signed session cookie's serializer is made once per set of keys (idp.http)."""

from __future__ import annotations

from idp.http import CookieSessions


def test_the_serializer_is_made_once_per_key_set(app):
    """Test that the app's session interface gives the same serializer for the same keys,
    a new one for a new secret key, and that it still signs and reads a session."""
    interface = app.session_interface
    assert isinstance(interface, CookieSessions)
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    assert first.loads(first.dumps({"sid": "x"})) == {"sid": "x"}
    key = app.secret_key
    try:
        app.secret_key = key + "-rotated"
        rotated = interface.get_signing_serializer(app)
        assert rotated is not first
        assert rotated.loads(rotated.dumps({"sid": "y"})) == {"sid": "y"}
    finally:
        app.secret_key = key


def test_no_secret_key_means_no_sessions(app):
    """Test that without a secret key no serializer is made (Flask's null session)."""
    key = app.secret_key
    try:
        app.secret_key = None
        assert app.session_interface.get_signing_serializer(app) is None
    finally:
        app.secret_key = key
