"""Views without a Flask-Limiter limit are passed before Flask-Limiter resolves limits
(``idp.extensions.skip_unlimited``); every limited view is still checked."""

from __future__ import annotations

from unittest import mock

import pytest

from idp.extensions import UNLIMITED
from idp.extensions import limiter
from idp.extensions import skip_unlimited

PROTOCOL = ["oauth.token", "oauth.introspect", "oauth.userinfo", "oauth.revoke",
            "oauth.device_authorization", "kiosk_api.touch_events"]
LIMITED = ["interaction.login", "admin.login", "device.enter_code"]


def test_protocol_endpoints_skip_flask_limiter_and_limited_views_do_not(app):
    """Test that the protocol endpoints, which carry no Flask-Limiter limit, are listed as
    unlimited, and the views with a sign-in or user-code limit are not."""
    unlimited = app.extensions[UNLIMITED]
    for endpoint in PROTOCOL + LIMITED:
        assert endpoint in app.view_functions, endpoint
    assert set(PROTOCOL) <= unlimited
    assert not set(LIMITED) & unlimited


def test_a_token_request_runs_none_of_flask_limiters_work(client):
    """Test that a token request is answered without Flask-Limiter identifying the request
    or resolving limits, and a sign-in page still goes through both."""
    with mock.patch.object(limiter, "identify_request", wraps=limiter.identify_request) as who, \
            mock.patch.object(limiter.limit_manager, "resolve_limits",
                              wraps=limiter.limit_manager.resolve_limits) as resolve:
        response = client.post("/token", data={"grant_type": "client_credentials"},
                               auth=("mc_nobody", "wrong"))
        assert response.status_code == 401
        assert (who.call_count, resolve.call_count) == (0, 0)
        assert client.get("/login").status_code == 200
        assert who.call_count >= 1 and resolve.call_count >= 1


@pytest.mark.own_app
def test_with_default_limits_nothing_is_skipped(app):
    """Test that an app with default limits (which apply to every view) skips none."""
    with mock.patch.object(type(limiter.limit_manager), "default_limits",
                           new_callable=mock.PropertyMock, return_value=["1 per second"]):
        skip_unlimited(app)
    assert app.extensions[UNLIMITED] == frozenset()
