"""What a resident reads on the way from a signage kiosk's code to the decision: the login
page names the service and the place; the consent page has the draft terms' notes."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories
from tests.factories import csrf
from tests.helpers.device import authorize

PLACE = "北2条西4丁目 交差点広場"


@pytest.fixture
def kiosk(app):
    factories.resident()
    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", PLACE)
    db.session.commit()
    return factories.RP(client.id, secret, company, redirect_uri="")


def enter(client, user_code):
    """Enter the code; return where /device/confirm sends a browser not signed in."""
    page = client.get("/device", query_string={"user_code": user_code})
    response = client.post("/device", data={"user_code": user_code,
                                            "csrf_token": csrf(page.text)})
    return client.get(response.headers["Location"]).headers["Location"]


def test_login_from_a_kiosk_names_the_service_and_place(client, kiosk):
    """Test that the login page reached from /device says which service and which place."""
    login = client.get(enter(client, authorize(client, kiosk)["user_code"])).text
    assert f"{PLACE}のサイネージ端末で北2条広場サイネージ（提供者：C社）を利用するために" in login


def test_login_from_a_kiosk_in_english(client, kiosk):
    """Test the same sentence in English."""
    client.get("/lang/en")
    login = client.get(enter(client, authorize(client, kiosk)["user_code"])).text
    assert ("Sign in to use 北2条広場サイネージ (provided by C社) on the signage kiosk at "
            f"{PLACE}.") in login


def test_plain_login_does_not_mention_a_kiosk(client, kiosk):
    """Test that the login page without a kiosk request says nothing about one."""
    enter(client, authorize(client, kiosk)["user_code"])
    page = client.get("/login").text
    assert "サイネージ端末で" not in page and PLACE not in page


def test_expired_kiosk_code_is_not_named_on_login(client, kiosk):
    """Test that once the code expired the login page no longer names the kiosk."""
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        location = enter(client, authorize(client, kiosk)["user_code"])
        frozen.tick(dt.timedelta(seconds=601))
        page = client.get(location).text
    assert PLACE not in page


def test_kiosk_consent_has_every_note(client, kiosk):
    """Test the kiosk's consent page: the lead-in, the four notes of the draft terms plus the
    statistics note, who provides the service, and the decision bar."""
    location = enter(client, authorize(client, kiosk)["user_code"])
    login = client.get(location)
    response = client.post("/login", data={
        "email": "hanako@example.jp", "password": factories.PASSWORD,
        "next": "/device/confirm", "csrf_token": csrf(login.text)})
    page = client.get(response.headers["Location"]).text
    assert "以下の点にご注意ください" in page
    assert page.count('<details class="note">') == 5
    assert "北2条広場サイネージを提供するC社が責任を負っており" in page
    assert "C社に提供されるのは、この画面に示した情報だけです" in page
    assert "北2条広場サイネージ（提供者：C社）" in page
    assert "推進体制の画面" not in page
    assert 'class="actions consent-actions"' in page
