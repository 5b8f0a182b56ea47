"""/account/delete: the consortium ID goes, companies can never re-link, aggregates stay anonymous."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import BrowserSession
from idp.access.models import PairwiseSubject
from idp.access.models import Token
from idp.accounts.models import Resident
from idp.audit.models import AuditEvent
from idp.citydata import export
from idp.citydata.buckets import TIMEZONE as JST
from idp.citydata.models import CityContribution
from idp.citydata.models import CitySeal
from idp.consent.models import Consent
from idp.consent.models import ConsentReceipt
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.accounts import Inputs
from tests.helpers.accounts import mails_to
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import refresh
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo

EMAIL = "hanako@example.jp"


@pytest.fixture
def resident(app):
    return factories.resident(EMAIL)


def delete(client, password=factories.PASSWORD):
    return post_form(client, "/account/delete", {"password": password})


def rows(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def add_touch(resident_id: str) -> str:
    rp = factories.rp(factories.company("C社"), grant_types=["client_credentials"],
                      redirect_uris=None, scopes=["touch_events"])
    db.session.add(Kiosk(client_id=rp.client_id, location="北2条広場"))
    db.session.add(TouchEvent(client_id=rp.client_id, resident_id=resident_id, target="guide",
                              occurred_at=utcnow() - dt.timedelta(minutes=3), event_id="t1"))
    db.session.commit()
    return rp.client_id


def test_page_asks_for_the_password_in_an_input_named_password(client, resident):
    """Test the contract: the deletion form posts the password in an input named `password`."""
    sign_in(client)
    page = client.get("/account/delete")
    inputs = Inputs(page.text)
    (field,) = inputs.named("password")
    assert field["type"] == "password"
    assert inputs.unlabelled() == []
    assert 'action="/account/delete"' in page.text and 'method="post"' in page.text


@pytest.mark.parametrize("password", ["wrong password", "", "x" * 5000])
def test_wrong_or_missing_password_deletes_nothing(client, resident, password):
    """Test that a wrong, empty or oversized password answers 400 and keeps everything."""
    sign_in(client)
    response = delete(client, password)
    assert response.status_code == 400
    assert "何も削除されていません" in response.text
    assert rows(Resident) == 1
    assert client.get("/account").status_code == 200


def test_deletion_kills_every_token_at_once(client, resident):
    """Test that after deletion every token of the resident is inactive at introspection and
    userinfo, and refresh fails."""
    a = factories.rp(factories.company("A社"))
    b = factories.rp(factories.company("B社"))
    a_tokens = tokens_for(client, a, scope="openid email offline_access")
    b_tokens = tokens_for(client, b, scope="openid email offline_access")
    assert delete(client).status_code == 200
    for rp, issued in ((a, a_tokens), (b, b_tokens)):
        assert introspect(client, rp, issued["access_token"]).json == {"active": False}
        assert introspect(client, rp, issued["refresh_token"]).json == {"active": False}
        assert userinfo(client, issued["access_token"]).status_code == 401
        assert refresh(client, rp, issued["refresh_token"]).json["error"] == "invalid_grant"
    assert rows(Token) == 0


def test_deletion_removes_personal_data_and_pairwise_subjects(client, resident):
    """Test that the resident, consents, receipts, sessions and pairwise subjects are gone."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid name email")
    assert rows(PairwiseSubject) == 1
    delete(client)
    for model in (Resident, Consent, ConsentReceipt, BrowserSession, PairwiseSubject, Token):
        assert rows(model) == 0, model.__tablename__


def test_companies_can_never_relink_a_new_id(client, resident):
    """Test that registering again gives a new consortium ID and a new sub at the same company."""
    rp = factories.rp()
    old_sub = jwt_claims(tokens_for(client, rp, scope="openid")["id_token"])["sub"]
    old_id = resident.id
    delete(client)
    again = factories.resident(EMAIL)
    new_sub = jwt_claims(tokens_for(client, rp, scope="openid")["id_token"])["sub"]
    assert again.id != old_id
    assert new_sub != old_sub


def test_touch_events_stay_only_as_anonymous_counts(client, resident):
    """Test that touches recorded against the resident are kept without any link to them."""
    add_touch(resident.id)
    sign_in(client)
    delete(client)
    (event,) = db.session.scalars(select(TouchEvent))
    assert event.resident_id is None
    assert (event.target, event.event_id) == ("guide", "t1")


def test_the_city_exports_frozen_contributions_go_sealed_counts_stay(client, resident):
    """Test that the resident's frozen contributions to sealed hours of the city export
    (a pseudonym with their values at a time and place) are deleted, another resident's
    stay, and the sealed counts stay as numbers in totals."""
    other = factories.resident("other@example.jp")
    kiosk_id = add_touch(resident.id)
    when = utcnow() - dt.timedelta(days=2)
    for rid in (resident.id, other.id):
        db.session.add(TouchEvent(client_id=kiosk_id, resident_id=rid, target="map",
                                  occurred_at=when))
    db.session.commit()
    day = when.astimezone(JST).date()
    export.city_stats(day, day)
    db.session.commit()
    assert rows(CityContribution) == 2
    sealed = rows(CitySeal)
    sign_in(client)
    delete(client)
    (kept,) = db.session.scalars(select(CityContribution))
    assert kept.person == export.pseudonym(other.id)
    assert rows(CitySeal) == sealed
    (deleted,) = tags("resident:account:delete")
    assert deleted.data["city_contributions_deleted"] == 1


def test_audit_trail_keeps_counts_but_no_personal_data(client, resident):
    """Test that earlier events lose resident id, IP and user agent, and the deletion event has none."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid email")
    rid = resident.id
    delete(client)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.resident_id == rid)) == 0
    releases = tags("oauth:claims:release")
    assert releases and all(e.resident_id is None and e.ip is None and e.user_agent is None
                            for e in releases)
    assert all(e.company_id == rp.company_id for e in releases)
    (deleted,) = tags("resident:account:delete")
    assert (deleted.resident_id, deleted.ip, deleted.user_agent) == (None, None, None)
    assert deleted.data["tokens_revoked"] >= 1
    assert deleted.data["pairwise_subjects_removed"] == 1
    assert deleted.data["audit_events_deidentified"] >= 5
    # One count from each domain's part of the deletion (idp.privacy.deletion.PARTS).
    assert set(deleted.data) == {"consents_withdrawn", "security_events_queued", "tokens_revoked",
                                 "pairwise_subjects_removed", "touch_events_anonymised",
                                 "city_contributions_deleted", "audit_events_deidentified", "registered_records_deleted",
                                 "data_links_deleted", "collection_stops_deleted"}
    assert EMAIL not in str(deleted.data) and rid not in str(deleted.data)


def test_browser_is_signed_out_and_told(client, resident):
    """Test that the deleting browser is signed out, and a goodbye mail goes to the address."""
    sign_in(client)
    response = delete(client)
    assert "コンソーシアムIDを削除しました" in response.text
    assert client.get("/account").status_code == 303
    assert factories.Browser(client).login().status_code == 401
    (goodbye,) = mails_to(EMAIL)
    assert "/register" in goodbye.body


def test_other_browsers_are_signed_out_too(app, client, resident):
    """Test that a second browser of the resident loses its session."""
    other = app.test_client()
    sign_in(other)
    sign_in(client)
    delete(client)
    assert other.get("/account").status_code == 303


def test_other_residents_are_untouched(client, resident):
    """Test that deleting one resident leaves another's data, tokens and consents alone."""
    rp = factories.rp()
    factories.resident("jiro@example.jp")
    from tests.helpers.oauth import ResidentBrowser

    jiro_tokens = tokens_for(client, rp, scope="openid email",
                             browser=ResidentBrowser(client, "jiro@example.jp"))
    client.post("/logout", data={"csrf_token": factories.csrf(client.get("/").text)})
    sign_in(client)
    delete(client)
    assert rows(Resident) == 1
    assert introspect(client, rp, jiro_tokens["access_token"]).json["active"] is True


def test_deletion_without_csrf_or_by_get_changes_nothing(client, resident):
    """Test that a post without CSRF, or a GET with the password, deletes nothing."""
    sign_in(client)
    assert client.post("/account/delete",
                       data={"password": factories.PASSWORD}).status_code == 400
    client.get("/account/delete", query_string={"password": factories.PASSWORD})
    assert rows(Resident) == 1


def test_address_can_register_again(client, resident):
    """Test that the freed address can start a new registration (it gets a registration link)."""
    sign_in(client)
    delete(client)
    post_form(client, "/register", {"email": EMAIL})
    assert "/register/complete" in mails_to(EMAIL)[-1].body
