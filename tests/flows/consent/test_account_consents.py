"""/account/consents (各サービスでのデータ利用): every consent, and withdrawal per service."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from idp.access.models import Token
from idp.clients import service as clients
from idp.consent.models import Consent
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import Inputs
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.oauth import introspect
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo


@pytest.fixture
def two_services(client):
    """A resident who consented to A社's service (with tokens) and to B社's."""
    factories.resident()
    a = factories.rp(factories.company("A社"), policy_uri="https://a.example.jp/privacy")
    b = factories.rp(factories.company("B社"))
    a_tokens = tokens_for(client, a, scope="openid name email offline_access")
    b_tokens = tokens_for(client, b, scope="openid postal_code offline_access")
    return a, b, a_tokens, b_tokens


def consent_of(client_id: str) -> Consent:
    db.session.expire_all()
    return db.session.scalar(select(Consent).where(Consent.client_id == client_id))


def withdraw(client, client_id: str):
    return post_form(client, "/account/consents", {"client_id": client_id, "confirm": "yes"})


def test_each_consent_is_listed_with_what_and_until_when(client, two_services):
    """Test that the page shows company, service, items, since and until for each consent."""
    a, b, _, _ = two_services
    page = client.get("/account/consents")
    assert page.status_code == 200
    assert "XXXサービス（提供者：A社）" in page.text and "XXXサービス（提供者：B社）" in page.text
    card = page.text[page.text.index(f'id="consent-{a.client_id}"'):]
    card = card[:card.index("button-danger")]
    for label in ("コンソーシアムID", "姓名（フリガナ）", "メールアドレス", "継続的な利用"):
        assert label in card
    consent = consent_of(a.client_id)
    assert consent.granted_at.isoformat() in page.text
    assert consent.expires_at.isoformat() in page.text
    assert "https://a.example.jp/privacy" in page.text


def test_each_consent_has_a_post_form_with_the_client_id(client, two_services):
    """Test the contract: one POST form per consent holding an input named client_id."""
    a, b, _, _ = two_services
    page = client.get("/account/consents")
    forms = re.findall(r'<form[^>]*method="post"[^>]*action="/account/consents"[^>]*>(.*?)</form>',
                       page.text, re.S)
    ids = [re.search(r'name="client_id" value="([^"]+)"', f).group(1) for f in forms]
    assert sorted(ids) == sorted([a.client_id, b.client_id])
    assert all('name="csrf_token"' in f for f in forms)
    assert Inputs(page.text).unlabelled() == []


def test_withdrawal_kills_that_clients_tokens_at_once(client, two_services):
    """Test that after withdrawal every token of the resident for that client is inactive at
    introspection and userinfo, while the other company's tokens keep working."""
    a, b, a_tokens, b_tokens = two_services
    response = withdraw(client, a.client_id)
    assert response.status_code == 303
    assert consent_of(a.client_id).withdrawn_at is not None
    for token in (a_tokens["access_token"], a_tokens["refresh_token"]):
        assert introspect(client, a, token).json == {"active": False}
    assert userinfo(client, a_tokens["access_token"]).status_code == 401
    assert refresh(client, a, a_tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert introspect(client, b, b_tokens["access_token"]).json["active"] is True
    assert userinfo(client, b_tokens["access_token"]).status_code == 200
    assert db.session.scalar(select(Token).where(
        Token.client_id == a.client_id, Token.revoked_at.is_(None))) is None


def test_next_sign_in_to_that_service_asks_again(client, two_services):
    """Test that after withdrawal the service's next authorization shows the consent screen."""
    a, b, _, _ = two_services
    withdraw(client, a.client_id)
    _, challenge = factories.pkce_pair()
    response = factories.Browser(client).authorize(a, code_challenge=challenge,
                                                   code_challenge_method="S256")
    assert urlsplit(response.headers["Location"]).path.startswith("/consent/")
    response = factories.Browser(client).authorize(b, scope="openid postal_code offline_access",
                                                   code_challenge=challenge,
                                                   code_challenge_method="S256")
    assert "code=" in response.headers["Location"]


def test_withdrawal_is_confirmed_and_moves_to_the_withdrawn_list(client, two_services):
    """Test that the page confirms the withdrawal and lists the consent as withdrawn."""
    a, _, _, _ = two_services
    page = client.get(withdraw(client, a.client_id).headers["Location"])
    assert "同意を取り消しました" in page.text
    assert "取り消した同意" in page.text
    assert page.text.count('name="client_id" value="' + a.client_id) == 0


def test_code_not_yet_redeemed_dies_with_the_withdrawal(client):
    """Test that a code issued before the withdrawal cannot be redeemed afterwards."""
    factories.resident()
    rp = factories.rp()
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(rp, code_challenge=challenge,
                                                 code_challenge_method="S256")
    withdraw(client, rp.client_id)
    assert factories.exchange(client, rp, result["code"], verifier).json["error"] == \
        "invalid_grant"


def test_withdrawing_a_service_never_consented_changes_nothing(client, two_services):
    """Test that a client the resident never consented to gets a clear message and 400."""
    a, _, a_tokens, _ = two_services
    stranger = factories.rp(factories.company("C社"))
    for client_id in (stranger.client_id, "mc_DOESNOTEXIST0000000", "", "x" * 500):
        response = withdraw(client, client_id)
        assert response.status_code == 400
        assert "取り消せる同意がありません" in response.text
    assert consent_of(a.client_id).withdrawn_at is None
    assert introspect(client, a, a_tokens["access_token"]).json["active"] is True


def test_withdrawing_twice_changes_nothing_the_second_time(client, two_services):
    """Test that a second withdrawal of the same service is answered with the message."""
    a, _, _, _ = two_services
    withdraw(client, a.client_id)
    withdrawn_at = consent_of(a.client_id).withdrawn_at
    assert withdraw(client, a.client_id).status_code == 400
    assert consent_of(a.client_id).withdrawn_at == withdrawn_at


def test_another_residents_consent_cannot_be_withdrawn(app, client, two_services):
    """Test that a resident posting a client only someone else consented to changes nothing."""
    a, _, a_tokens, _ = two_services
    factories.resident("jiro@example.jp")
    other = app.test_client()
    sign_in(other, "jiro@example.jp")
    response = post_form(other, "/account", {"client_id": a.client_id},
                         action="/account/consents")
    assert response.status_code == 400
    assert consent_of(a.client_id).withdrawn_at is None
    assert introspect(client, a, a_tokens["access_token"]).json["active"] is True
    page = other.get("/account/consents")
    assert "情報の提供に同意したサービスはありません" in page.text
    assert a.client_id not in page.text


def test_withdrawal_without_csrf_is_refused(client, two_services):
    """Test that a withdrawal post without a CSRF token changes nothing."""
    a, _, _, _ = two_services
    response = client.post("/account/consents", data={"client_id": a.client_id})
    assert response.status_code == 400
    assert consent_of(a.client_id).withdrawn_at is None


def test_disconnected_service_is_shown_as_such_and_can_be_withdrawn(client, two_services):
    """Test that a revoked client's consent says it is no longer connected and can be withdrawn."""
    a, _, _, _ = two_services
    clients.revoke_client(a.client_id)
    db.session.commit()
    page = client.get("/account/consents")
    assert "このサービスとの連携は終了しました" in page.text
    assert withdraw(client, a.client_id).status_code == 303


def test_expired_and_old_terms_consents_say_they_will_be_asked_again(client, two_services):
    """Test that an expired consent and one under older terms are labelled as such."""
    import datetime as dt

    from idp.db import utcnow

    a, b, _, _ = two_services
    expired, old_terms = consent_of(a.client_id), consent_of(b.client_id)
    expired.expires_at = utcnow() - dt.timedelta(days=1)
    old_terms.terms_version = "2020-01"
    db.session.commit()
    page = client.get("/account/consents")
    assert "有効期限切れ" in page.text
    assert "以前の利用規約での同意" in page.text


def test_junk_client_ids_and_receipt_ids_never_reach_the_database(client, two_services):
    """Test that NUL and other junk in a withdrawal or a receipt URL get 400/404, not a 500."""
    for junk in ("\x00", "mc_\x00abc", "ｍｃ_全角"):
        assert withdraw(client, junk).status_code == 400
    assert client.get("/account/consents/receipts/%00.json").status_code == 400  # idp.inputs
    assert client.get("/account/consents/receipts/%E3%81%82.json").status_code == 404
