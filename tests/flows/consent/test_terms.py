"""Terms of use versions: a new version is accepted at the next sign-in before anything continues."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.db import utcnow
from idp.extensions import db
from idp.terms import service as terms
from tests import factories
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for

NEW = "2027-01"


def publish(version=NEW, **kwargs):
    row = terms.publish_terms(version, f"https://consortium.example.jp/terms/{version}",
                              summary="第5条を変更しました。", summary_en="Article 5 changed.",
                              **kwargs)
    db.session.commit()
    return row


def resident_row() -> Resident:
    db.session.expire_all()
    return db.session.scalar(select(Resident))


def pkce():
    _, challenge = factories.pkce_pair()
    return {"code_challenge": challenge, "code_challenge_method": "S256"}


def answer(client, location: str, decision: str):
    page = client.get(location)
    assert page.status_code == 200, page.text
    data = {"decision": decision, "csrf_token": factories.csrf(page.text),
            "version": page.text.split('name="version" value="')[1].split('"')[0]}
    query = dict(p.split("=", 1) for p in urlsplit(location).query.split("&") if p)
    data.update({k: v for k, v in query.items() if k in ("interaction", "next")})
    return client.post("/terms", data=data)


@pytest.fixture
def resident(app):
    return factories.resident()


def test_settings_version_is_current_until_one_is_published(app, resident):
    """Test that the terms_version setting is current before any publication, and a publication replaces it."""
    assert terms.current_version() == app.extensions["idp.settings"].terms_version
    publish()
    current = terms.current()
    assert (current.version, current.url) == (NEW, "https://consortium.example.jp/terms/2027-01")
    assert tags("terms:publish")[0].data["version"] == NEW


def test_future_version_takes_effect_at_its_time(app, resident):
    """Test that a version published for later becomes current only then."""
    start = utcnow()
    publish(effective_at=start + dt.timedelta(days=7))
    assert terms.current_version() != NEW
    with freeze_time(start + dt.timedelta(days=7, seconds=1)):
        assert terms.current_version() == NEW


@pytest.mark.parametrize(("version", "url", "message"), [
    ("", "", "version"), ("has space", "", "version"), ("x" * 41, "", "version"),
    ("2027-02", "javascript:alert(1)", "url"), ("2027-02", "https://" + "x" * 500, "url"),
])
def test_publication_checks_its_input(resident, version, url, message):
    """Test that bad versions and URLs are refused with a message."""
    with pytest.raises(terms.TermsError, match=message):
        terms.publish_terms(version, url)


def test_a_version_is_published_once_and_in_order(resident):
    """Test that a version name cannot be reused and effective times only move forward."""
    publish()
    with pytest.raises(terms.TermsError, match="already"):
        publish()
    with pytest.raises(terms.TermsError, match="after"):
        publish("2026-12", effective_at=utcnow() - dt.timedelta(days=1))
    with pytest.raises(terms.TermsError, match="time zone"):
        terms.publish_terms("2027-03", summary="改定", summary_en="Revised",
                            effective_at=dt.datetime(2030, 1, 1))  # noqa: DTZ001


def test_sign_in_stops_at_the_new_terms(client, resident):
    """Test that after a publication the next sign-in goes to the terms page, then on after accepting."""
    publish()
    response = sign_in(client)
    assert urlsplit(response.headers["Location"]).path == "/terms"
    page = client.get(response.headers["Location"])
    assert "利用規約が改定されました" in page.text and "第5条を変更しました。" in page.text
    assert "https://consortium.example.jp/terms/2027-01" in page.text
    accepted = answer(client, response.headers["Location"], "accept")
    assert accepted.status_code == 302
    assert resident_row().terms_version == NEW
    assert tags("resident:terms:accept")[-1].data["version"] == NEW


def test_sign_in_returns_to_next_after_accepting(client, resident):
    """Test that a sign-in that was going somewhere goes there after the terms."""
    publish()
    page = client.get("/login?next=/account/history")
    response = client.post("/login", data={"email": "hanako@example.jp",
                                           "password": factories.PASSWORD,
                                           "next": "/account/history",
                                           "csrf_token": factories.csrf(page.text)})
    accepted = answer(client, response.headers["Location"], "accept")
    assert accepted.headers["Location"] == "/account/history"


def test_authorization_stops_at_new_terms_even_when_signed_in(client, resident):
    """Test that a live session meets the terms page before any code is issued, then consent again."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid email")
    publish()
    response = factories.Browser(client).authorize(rp, scope="openid email", **pkce())
    location = response.headers["Location"]
    assert urlsplit(location).path == "/terms"
    accepted = answer(client, location, "accept")
    resumed = client.get(accepted.headers["Location"])
    assert urlsplit(resumed.headers["Location"]).path.startswith("/consent/")  # terms_changed
    page = client.get(resumed.headers["Location"])
    assert f"{NEW}版" in page.text


def test_prompt_none_answers_interaction_required(client, resident):
    """Test that prompt=none with terms to accept redirects to the client with interaction_required."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid email")
    publish()
    response = factories.Browser(client).authorize(rp, scope="openid email", prompt="none",
                                                   **pkce())
    query = factories.query(response.headers["Location"])
    assert query["error"] == "interaction_required"
    assert query["state"] == "st-123" and query["iss"] == "http://localhost"


def test_declining_during_authorization_signs_out_and_tells_the_client(client, resident):
    """Test that Decline signs the resident out and answers the client with access_denied."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid email")
    publish()
    location = factories.Browser(client).authorize(rp, scope="openid email",
                                                   **pkce()).headers["Location"]
    response = answer(client, location, "decline")
    query = factories.query(response.headers["Location"])
    assert response.headers["Location"].startswith(rp.redirect_uri)
    assert (query["error"], query["state"]) == ("access_denied", "st-123")
    assert client.get("/account").status_code == 303
    assert resident_row().terms_version != NEW
    assert tags("resident:terms:decline")[0].data["version"] == NEW


def test_declining_at_sign_in_signs_out(client, resident):
    """Test that Decline outside an authorization signs out with an explanation."""
    publish()
    response = sign_in(client)
    declined = answer(client, response.headers["Location"], "decline")
    assert declined.status_code == 200
    assert "ログアウトしました" in declined.text
    assert client.get("/account").status_code == 303


def test_terms_page_left_open_across_a_publication_accepts_nothing(client, resident):
    """Test that accepting a version that is no longer current is refused (409)."""
    publish()
    location = sign_in(client).headers["Location"]
    page = client.get(location)
    publish("2027-02")
    response = client.post("/terms", data={"decision": "accept", "version": NEW,
                                           "csrf_token": factories.csrf(page.text)})
    assert response.status_code == 409
    assert resident_row().terms_version not in (NEW, "2027-02")


def test_acceptance_needs_csrf(client, resident):
    """Test that the terms form without a CSRF token accepts nothing."""
    publish()
    sign_in(client)
    response = client.post("/terms", data={"decision": "accept", "version": NEW})
    assert response.status_code == 400
    assert resident_row().terms_version != NEW


def test_refresh_stops_until_the_consent_is_renewed(client, resident):
    """Test that a consent given under older terms no longer refreshes tokens."""
    rp = factories.rp()
    issued = tokens_for(client, rp, scope="openid email offline_access")
    publish()
    assert refresh(client, rp, issued["refresh_token"]).json["error"] == "invalid_grant"


def test_data_rights_do_not_wait_for_the_terms(client, resident):
    """Test that a resident who has not accepted can still export and reach deletion."""
    publish()
    sign_in(client)
    assert client.get("/account/export").status_code == 200
    assert client.get("/account/delete").status_code == 200
    assert "利用規約が改定されました" in client.get("/account").text


def test_terms_page_is_public(client, resident):
    """Test that /terms shows the version in force, the two clauses and the link, to anyone."""
    publish()
    page = client.get("/terms")
    assert page.status_code == 200
    assert f"{NEW}版が適用されています" in page.text
    assert "会員企業に提供" in page.text and "収集します" in page.text
    assert 'name="decision"' not in page.text


def test_new_resident_without_accepted_terms_is_asked(client):
    """Test that an operator-created resident (no terms accepted) is asked at first sign-in."""
    factories.resident(terms_accepted=False)
    assert urlsplit(sign_in(client).headers["Location"]).path == "/terms"


def test_cli_publishes_and_lists(cli, resident):
    """Test `idp terms publish` and `idp terms list --json`."""
    result = cli("terms", "publish", "--version", NEW, "--url",
                 "https://consortium.example.jp/terms/2027-01", "--effective-at",
                 "2026-01-01T00:00:00+09:00", "--summary", "改定", "--summary-en", "Revised",
                 "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(cli("terms", "list", "--json").output)
    assert listed["current"] == NEW
    assert [v["version"] for v in listed["versions"]] == [NEW]
    assert tags("terms:publish")[0].actor == "cli"
    bad = cli("terms", "publish", "--version", "2027-02", "--effective-at", "tomorrow",
              "--summary", "改定", "--summary-en", "Revised")
    assert bad.exit_code != 0
    again = cli("terms", "publish", "--version", NEW, "--summary", "改定", "--summary-en",
                "Revised")
    assert again.exit_code == 1 and "already" in again.output
