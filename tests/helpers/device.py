"""The device flow as the tests drive it (RFC 8628): the kiosk asks for a code and polls;
the resident's phone enters the code, signs in and decides."""

from __future__ import annotations

import re

from tests import factories
from tests.factories import csrf

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def authorize(client, kiosk, scope="openid touch_events"):
    response = client.post("/device_authorization", data={"scope": scope},
                           auth=(kiosk.client_id, kiosk.client_secret))
    assert response.status_code == 200, response.text
    return response.json


def poll(client, kiosk, device_code):
    return client.post("/token", data={"grant_type": GRANT, "device_code": device_code},
                       auth=(kiosk.client_id, kiosk.client_secret))


def enter_code(client, user_code):
    """The resident's phone enters the code; the answer of /device/confirm (the consent
    page, or a redirect to sign in first)."""
    page = client.get("/device", query_string={"user_code": user_code})
    response = client.post("/device", data={"user_code": user_code, "csrf_token": csrf(page.text)})
    assert response.status_code == 302, response.text
    return client.get(response.headers["Location"])


def decide(client, decision="allow"):
    """The signed-in resident answers the consent page of /device/confirm."""
    page = client.get("/device/confirm")
    assert page.status_code == 200, page.text
    return client.post("/device/confirm", data={"decision": decision,
                                                "csrf_token": csrf(page.text)})


def approve(client, user_code, decision="allow", login=True):
    """The resident's phone: enter the code, sign in, decide."""
    response = enter_code(client, user_code)
    if login and response.status_code == 302:
        assert "/login" in response.headers["Location"]
        login_page = client.get(response.headers["Location"])
        next_url = re.search(r'name="next" value="([^"]+)"', login_page.text).group(1)
        response = client.post("/login", data={"email": "hanako@example.jp",
                                               "password": factories.PASSWORD,
                                               "next": next_url,
                                               "csrf_token": csrf(login_page.text)})
        response = client.get(response.headers["Location"])
    assert response.status_code == 200, response.text
    return client.post("/device/confirm", data={"decision": decision,
                                                "csrf_token": csrf(response.text)})
