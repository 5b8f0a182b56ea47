"""Stopping one item for one service, keeping the rest (issue 15, item 7), and the
confirmation step before anything on /account/consents ends access."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp.consent.models import Consent
from idp.consent.models import ConsentReceipt
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import post_form
from tests.helpers.accounts import tags
from tests.helpers.oauth import introspect
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

SCOPE = "openid name birth_year email offline_access"


class TaroBrowser(factories.Browser):
    """A second resident's browser."""

    def login(self, email="taro@example.jp", **kwargs):
        return super().login(email, **kwargs)


@pytest.fixture
def service(client, app):
    """Hanako and Taro both share name, birth year and email with A社's service."""
    factories.resident()
    factories.resident("taro@example.jp", given_name="太郎")
    rp = factories.rp(factories.company("A社"))
    taro_tokens = tokens_for(app.test_client(), rp, scope=SCOPE,
                             browser=TaroBrowser(app.test_client()))
    hanako_tokens = tokens_for(client, rp, scope=SCOPE)
    return rp, hanako_tokens, taro_tokens


def consent_of(client_id: str, email: str = "hanako@example.jp") -> Consent:
    db.session.expire_all()
    from idp.accounts.models import Resident
    resident = db.session.scalar(select(Resident).where(Resident.email == email))
    return db.session.scalar(select(Consent).where(Consent.client_id == client_id,
                                                   Consent.resident_id == resident.id))


def stop(client, rp, item: str, confirm: bool = True):
    data = {"client_id": rp.client_id, "item": item}
    if confirm:
        data["confirm"] = "yes"
    return post_form(client, "/account/consents", data, action="/account/consents/item")


def test_each_optional_item_has_a_stop_form(client, service):
    """Test that the page offers one stop form per optional item, none for the user ID."""
    rp, _, _ = service
    page = client.get("/account/consents").text
    assert page.count('action="/account/consents/item"') == 4
    for item in ("name", "birth_year", "email", "offline_access"):
        assert f'name="item" value="{item}"' in page
    assert 'name="item" value="openid"' not in page


def test_the_first_post_only_asks_and_changes_nothing(client, service):
    """Test that a post without the confirmation step shows what stops and what stays, and
    leaves the consent and the tokens as they were."""
    rp, hanako, _ = service
    response = stop(client, rp, "birth_year", confirm=False)
    assert response.status_code == 200
    assert "生年" in response.text and 'name="confirm" value="yes"' in response.text
    assert "姓名（フリガナ）" in response.text  # what it keeps receiving
    assert "birth_year" in consent_of(rp.client_id).scopes
    assert introspect(client, rp, hanako["access_token"]).json["active"] is True
    assert tags("consent:change") == []


def test_stopping_one_item_narrows_what_the_service_receives(client, service):
    """Test that after stopping the birth year the old token is cut off, the service's next
    sign-in needs no consent screen, and UserInfo has the name and email but no birth
    date; the item is remembered as declined, audited, and a receipt records it."""
    rp, hanako, _ = service
    assert "birthdate" in userinfo(client, hanako["access_token"]).json
    response = stop(client, rp, "birth_year")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert "生年" in page
    consent = consent_of(rp.client_id)
    assert "birth_year" not in consent.scopes and "birth_year" in consent.declined_scopes
    assert {"openid", "name", "email", "offline_access"} <= set(consent.scopes)
    assert consent.withdrawn_at is None
    assert introspect(client, rp, hanako["access_token"]).json == {"active": False}
    assert userinfo(client, hanako["access_token"]).status_code == 401

    _, challenge = factories.pkce_pair()
    again = factories.Browser(client).authorize(rp, scope=SCOPE, code_challenge=challenge,
                                                code_challenge_method="S256")
    assert not urlsplit(again.headers["Location"]).path.startswith("/consent/")
    fresh = tokens_for(client, rp, scope=SCOPE)
    info = userinfo(client, fresh["access_token"]).json
    assert "birthdate" not in info and info["email"] == "hanako@example.jp" and "name" in info
    assert "birth_year" not in introspect(client, rp, fresh["access_token"]).json["scope"]

    (change,) = tags("consent:change")
    assert change.data["withdrawn_items"] == ["birth_year"]
    assert change.data["tokens_revoked"] >= 1
    receipt = db.session.scalars(select(ConsentReceipt).where(
        ConsentReceipt.event == "narrowed")).one()
    assert "birth_year" not in receipt.document["extensions"]["jp.machi-id"]["scopes"]


def test_another_residents_grants_are_untouched(client, service):
    """Test that Hanako stopping an item leaves Taro's token and consent at the same
    service as they were."""
    rp, _, taro = service
    assert stop(client, rp, "birth_year").status_code == 303
    assert introspect(client, rp, taro["access_token"]).json["active"] is True
    assert "birthdate" in userinfo(client, taro["access_token"]).json
    assert "birth_year" in consent_of(rp.client_id, "taro@example.jp").scopes


@pytest.mark.parametrize("item", ["openid", "unknown", "gender", ""])
def test_the_user_id_and_items_not_shared_cannot_be_stopped(client, service, item):
    """Test that the required user ID, an unknown item and one never shared are refused
    with 400, before and after the confirmation step, and nothing changes."""
    rp, hanako, _ = service
    for confirm in (False, True):
        assert stop(client, rp, item, confirm=confirm).status_code == 400
    assert consent_of(rp.client_id).scopes == SCOPE.split()
    assert introspect(client, rp, hanako["access_token"]).json["active"] is True


def test_the_last_optional_item_goes_only_with_the_whole_consent(client, service):
    """Test that once one optional item is left it offers no stop form and a stop post is
    refused: ending the last item is a withdrawal."""
    rp, _, _ = service
    for item in ("name", "birth_year", "email"):
        assert stop(client, rp, item).status_code == 303
    assert 'action="/account/consents/item"' not in client.get("/account/consents").text
    assert stop(client, rp, "offline_access").status_code == 400
    assert "offline_access" in consent_of(rp.client_id).scopes


def test_stop_without_csrf_is_refused(client, service):
    """Test that a stop post without a CSRF token changes nothing."""
    rp, _, _ = service
    response = client.post("/account/consents/item", data={
        "client_id": rp.client_id, "item": "birth_year", "confirm": "yes"})
    assert response.status_code == 400
    assert "birth_year" in consent_of(rp.client_id).scopes


def test_withdrawal_asks_first(client, service):
    """Test that a withdrawal post without the confirmation step shows what stops and
    withdraws nothing; the confirmation's form then withdraws."""
    rp, hanako, _ = service
    response = post_form(client, "/account/consents", {"client_id": rp.client_id})
    assert response.status_code == 200
    assert "同意を取り消しますか" in response.text and 'name="confirm" value="yes"' in response.text
    assert consent_of(rp.client_id).withdrawn_at is None
    assert introspect(client, rp, hanako["access_token"]).json["active"] is True
    confirmed = post_form(client, "/account/consents",
                          {"client_id": rp.client_id, "confirm": "yes"})
    assert confirmed.status_code == 303
    assert consent_of(rp.client_id).withdrawn_at is not None


def test_withdrawal_confirmation_of_an_unknown_service_is_refused(client, service):
    """Test that asking to withdraw a consent that does not exist is a 400, not a page."""
    response = post_form(client, "/account/consents", {"client_id": "mc_nope"})
    assert response.status_code == 400


def test_stopping_one_item_leaves_every_nodes_client_cache_valid(client, service):
    """Test that one resident's narrowing does not move the revocation epoch: it changes
    only that resident's grants, which every request reads, not the client's settings
    that nodes keep in process (idp.access.epoch)."""
    from idp.access import epoch

    rp, _, _ = service
    db.session.rollback()
    before = epoch.current()
    assert stop(client, rp, "birth_year").status_code == 303
    db.session.rollback()
    assert epoch.current() == before
