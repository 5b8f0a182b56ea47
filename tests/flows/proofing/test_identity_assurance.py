"""Identity proofing and OpenID Connect for Identity Assurance 1.0 (verified_claims)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest

from idp.access.subjects import per_company_id
from idp.accounts.models import Resident
from idp.consent.models import Consent
from idp.db import utcnow
from idp.extensions import db
from idp.proofing import service as proofing
from tests import factories
from tests.factories import Browser
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.admin import hidden
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import redeem
from tests.helpers.oauth import refresh
from tests.helpers.oauth import userinfo

REQUEST = {"verification": {"trust_framework": None, "time": None, "evidence": None},
           "claims": {"given_name": None, "family_name": None, "birthdate": None,
                      "address": None}}


def claims_param(userinfo_request=REQUEST, id_token_request=None) -> str:
    value = {"userinfo": {"verified_claims": userinfo_request}}
    if id_token_request is not None:
        value["id_token"] = {"verified_claims": id_token_request}
    return json.dumps(value)


@pytest.fixture
def resident(app):
    return factories.resident()


@pytest.fixture
def proofed(resident):
    admin = enrolled_admin()
    proofing.record_proofing(resident.id, ["name", "birthdate", "address"], "my_number_card",
                             utcnow().date(), admin.id, actor="admin")
    db.session.commit()
    return resident


@pytest.fixture
def rp(app):
    return factories.rp(verified_claims_allowed=True)


def flow(client, rp, claims: str | None, consent_scopes=None, scope="openid name"):
    """Sign in, consent to ``consent_scopes`` (default: everything asked), redeem the code."""
    verifier, challenge = factories.pkce_pair()
    browser = Browser(client)
    params = {"code_challenge": challenge, "code_challenge_method": "S256"}
    if claims is not None:
        params["claims"] = claims
    response = browser.authorize(rp, scope=scope, **params)
    if "/login" in response.headers.get("Location", ""):
        uid = factories.query(response.headers["Location"])["interaction"]
        response = client.get(browser.login(interaction=uid).headers["Location"])
    consent_page = None
    if "/consent/" in response.headers.get("Location", ""):
        path = urlsplit(response.headers["Location"]).path
        consent_page = client.get(path).text
        if consent_scopes is None:
            consent_scopes = [s for s in ("openid", "name", "verified_claims")
                              if f'value="{s}"' in consent_page]
        response = browser.consent(path, scopes=consent_scopes)
    code = factories.query(response.headers["Location"])["code"]
    body = redeem(client, rp, code, verifier).json
    return body, consent_page


# ---- recording ----------------------------------------------------------------------------

def test_admin_records_a_check_at_the_counter(client, resident):
    """Test that the console finds the resident by consortium ID and records the check."""
    admin = enrolled_admin()
    browser = AdminBrowser(client, admin)
    browser.login()
    page = client.get("/admin/proofing", query_string={"q": resident.display_id})
    assert page.status_code == 200 and resident.display_id in page.text
    response = browser.form(f"/admin/proofing?q={resident.id}",
                            f"/admin/proofing/{resident.id}", claim=["name", "birthdate"],
                            evidence="drivers_licence", verified_on=utcnow().date().isoformat())
    assert response.status_code == 303
    (row,) = proofing.proofings(resident.id)
    assert (row.claims, row.evidence, row.admin_id) == (["name", "birthdate"],
                                                        "drivers_licence", admin.id)
    (event,) = events("proofing:record")
    assert event.admin_id == admin.id and event.resident_id == resident.id
    assert event.data["claims"] == ["name", "birthdate"]


@pytest.mark.parametrize(("claims", "evidence", "days_ago", "message"), [
    ([], "my_number_card", 0, "choose"),
    (["name", "nationality"], "my_number_card", 0, "choose"),
    (["name"], "library_card", 0, "unknown kind"),
    (["name"], "passport", 91, "within the last 90 days"),
    (["name"], "passport", -3, "within the last 90 days"),
])
def test_bad_proofing_records_are_refused(app, resident, claims, evidence, days_ago, message):
    """Test that unknown claims or documents and implausible dates are refused."""
    with pytest.raises(proofing.ProofingError, match=message):
        proofing.record_proofing(resident.id, claims, evidence,
                                 utcnow().date() - dt.timedelta(days=days_ago), "ad_X")


def test_an_unregistered_claim_cannot_be_verified(app):
    """Test that a claim the resident never registered cannot be recorded as verified."""
    bare = factories.resident("bare@example.jp", postal_code=None, locality=None)
    with pytest.raises(proofing.ProofingError, match="has not registered: address"):
        proofing.record_proofing(bare.id, ["address"], "passport", utcnow().date(), "ad_X")


def test_unknown_resident_in_console_is_a_clear_refusal(client):
    """Test that a search or a post for an unknown resident answers plainly, no 500."""
    browser = AdminBrowser(client, enrolled_admin())
    browser.login()
    client.get("/lang/en")  # the refusal's reason is recorded in the page's language
    assert client.get("/admin/proofing", query_string={"q": "ZZZZ-ZZZZ-ZZZZ-ZZZZ"}
                      ).status_code == 404
    page = client.get("/admin/companies")
    response = client.post("/admin/proofing/ZZZZZZZZZZZZZZZZ", data={
        "csrf_token": hidden(page.text, "csrf_token", "/admin/companies"),
        "form_token": hidden(page.text, "form_token", "/admin/companies"),
        "claim": "name", "evidence": "passport", "verified_on": utcnow().date().isoformat()})
    assert response.status_code == 303
    (refusal,) = events("admin:action:refused")
    assert refusal.data["action"] == "proofing:record"
    assert "no such resident" in refusal.data["reason"]


def test_a_changed_value_is_no_longer_verified(app, proofed):
    """Test that moving house makes the address unverified, the rest stays verified."""
    proofed.locality = "札幌市北区"
    db.session.commit()
    (item,) = proofing.verified(db.session.get(Resident, proofed.id))
    assert item.claims == ("name", "birthdate")


def test_a_later_check_of_one_claim_does_not_undo_the_others(app, proofed):
    """Test that a new address check after a move leaves name and birth year from the first."""
    proofed.postal_code, proofed.locality = "001-0010", "札幌市北区"
    db.session.commit()
    proofing.record_proofing(proofed.id, ["address"], "residence_card", utcnow().date(), "ad_X")
    db.session.commit()
    items = proofing.verified(db.session.get(Resident, proofed.id))
    assert [(i.evidence, i.claims) for i in items] == [("residence_card", ("address",)),
                                                       ("my_number_card", ("name", "birthdate"))]


def test_withdrawn_record_no_longer_counts(client, proofed):
    """Test that an admin can withdraw a record (after re-authentication), with a reason."""
    admin = enrolled_admin("second@consortium.example.jp")
    browser = AdminBrowser(client, admin)
    browser.login()
    (row,) = proofing.proofings(proofed.id)
    response = browser.form(f"/admin/proofing?q={proofed.id}",
                            f"/admin/proofing/record/{row.id}/withdraw",
                            reason="document found to be expired")
    assert response.status_code == 303
    assert proofing.verified(db.session.get(Resident, proofed.id)) == []
    assert proofing.proofing_for(proofed.id)[0]["withdrawn"] is True


def test_proofing_for_gives_the_account_page_what_it_shows(app, proofed):
    """Test the service the resident's /account page calls."""
    (entry,) = proofing.proofing_for(proofed.id)
    assert entry["claims"] == ["name", "birthdate", "address"]
    assert entry["verified_claims"] == entry["claims_in_use"] == entry["claims"]
    assert entry["evidence"] == "my_number_card" and entry["withdrawn"] is False
    assert entry["verified_on"] == utcnow().date().isoformat()
    assert proofing.proofing_for("NOSUCHRESIDENT00") == []


# ---- discovery -------------------------------------------------------------------------------

def test_discovery_advertises_identity_assurance(client):
    """Test the IDA metadata members and claims_parameter_supported."""
    metadata = client.get("/.well-known/openid-configuration").json
    assert metadata["claims_parameter_supported"] is True
    assert metadata["verified_claims_supported"] is True
    assert metadata["trust_frameworks_supported"] == ["jp_machi_id_counter"]
    assert metadata["evidence_supported"] == ["document"]
    assert set(metadata["documents_supported"]) == {"idcard", "driving_permit", "passport",
                                                    "residence_permit"}
    assert set(metadata["claims_in_verified_claims_supported"]) == {
        "given_name", "family_name", "name", "birthdate", "address"}


# ---- release with consent -------------------------------------------------------------------------

def test_verified_claims_are_released_after_consent(client, proofed, rp):
    """Test that the consent screen shows the verified item and UserInfo returns it."""
    body, page = flow(client, rp, claims_param())
    assert page is not None and 'value="verified_claims"' in page
    assert "マイナンバーカード" in page or "My Number card" in page
    info = userinfo(client, body["access_token"]).json
    verified = info["verified_claims"]
    assert verified["verification"]["trust_framework"] == "jp_machi_id_counter"
    assert verified["verification"]["time"] == utcnow().date().isoformat()
    assert verified["verification"]["evidence"][0]["document_details"]["type"] == "idcard"
    assert verified["claims"] == {"given_name": "花子", "family_name": "札幌",
                                  "birthdate": "1990",
                                  "address": {"postal_code": "060-0042",
                                              "locality": "札幌市中央区"}}
    consent = db.session.scalar(db.select(Consent))
    assert "verified_claims" in consent.scopes
    release = events("oauth:claims:release")[-1]
    assert "verified_claims.given_name" in release.data["claims"]


def test_only_requested_claims_and_elements_are_released(client, proofed, rp):
    """Test that the ID token gets only what its own request asked for."""
    request = {"verification": {"trust_framework": None}, "claims": {"birthdate": None}}
    body, _ = flow(client, rp, claims_param(userinfo_request=request, id_token_request=request))
    verified = jwt_claims(body["id_token"])["verified_claims"]
    assert verified == {"verification": {"trust_framework": "jp_machi_id_counter"},
                        "claims": {"birthdate": "1990"}}


def test_verification_process_is_per_company(client, proofed, rp):
    """Test that verification_process names the proofing record as each company sees it:
    the same for two clients of one company, different at another company, and never
    the record's own (sequential) id."""
    request = {"verification": {"trust_framework": None, "verification_process": None},
               "claims": {"given_name": None}}
    sibling = factories.rp(rp.company_id, verified_claims_allowed=True)
    other = factories.rp(factories.company("B社"), verified_claims_allowed=True)
    seen = {}
    for name, client_rp in (("rp", rp), ("sibling", sibling), ("other", other)):
        body, _ = flow(client, client_rp, claims_param(userinfo_request=request))
        verification = userinfo(client, body["access_token"]).json["verified_claims"][
            "verification"]
        seen[name] = verification["verification_process"]
    (record,) = proofing.proofings(proofed.id)
    assert seen["rp"] == seen["sibling"] != seen["other"]
    assert seen["rp"] == per_company_id(rp.company_id, "proofing", record.id)
    assert all(len(value) == 24 and "proofing" not in value for value in seen.values())


def test_declining_the_item_releases_nothing_verified(client, proofed, rp):
    """Test that unticking 'verified identity information' keeps verified_claims out."""
    body, page = flow(client, rp, claims_param(), consent_scopes=["openid", "name"])
    assert 'value="verified_claims"' in page
    info = userinfo(client, body["access_token"]).json
    assert "verified_claims" not in info and info["given_name"] == "花子"


def test_withdrawn_consent_item_stops_the_release_at_userinfo(client, proofed, rp):
    """Test that the consent is checked again at release time."""
    body, _ = flow(client, rp, claims_param())
    consent = db.session.scalar(db.select(Consent))
    consent.scopes = [s for s in consent.scopes if s != "verified_claims"]
    db.session.commit()
    assert "verified_claims" not in userinfo(client, body["access_token"]).json


def test_a_client_not_allowed_gets_nothing_and_is_not_asked(client, proofed):
    """Test that a client without verified_claims_allowed does not even see the item."""
    rp = factories.rp()
    body, page = flow(client, rp, claims_param())
    assert 'value="verified_claims"' not in page
    assert "verified_claims" not in userinfo(client, body["access_token"]).json


def test_a_resident_without_proofing_is_not_asked(client, resident, rp):
    """Test that with nothing verified there is no consent item and nothing released."""
    body, page = flow(client, rp, claims_param())
    assert 'value="verified_claims"' not in page
    assert "verified_claims" not in userinfo(client, body["access_token"]).json


def test_trust_framework_constraint_is_honoured(client, proofed, rp):
    """Test that asking for another trust framework gets no verified_claims."""
    request = {"verification": {"trust_framework": {"value": "de_aml"}},
               "claims": {"given_name": None}}
    body, _ = flow(client, rp, claims_param(userinfo_request=request))
    assert "verified_claims" not in userinfo(client, body["access_token"]).json


@pytest.mark.parametrize("bad", ["not json", "[1]", '{"userinfo": 5}',
                                 '{"userinfo": {"verified_claims": {"claims": {}}}}',
                                 '{"id_token": {"verified_claims": [5]}}'])
def test_malformed_claims_parameter_is_invalid_request(client, resident, rp, bad):
    """Test that a malformed claims parameter is answered with invalid_request (with iss)."""
    response = Browser(client).authorize(rp, scope="openid", claims=bad)
    assert response.status_code == 302
    params = factories.query(response.headers["Location"])
    assert params["error"] == "invalid_request" and params["iss"] == "http://localhost"


def test_refresh_keeps_the_request_and_the_consent_check(client, proofed):
    """Test that a refreshed access token still gets verified_claims at UserInfo."""
    rp = factories.rp(verified_claims_allowed=True)
    body, _ = flow(client, rp, claims_param(), scope="openid name offline_access",
                   consent_scopes=["openid", "name", "offline_access", "verified_claims"])
    refreshed = refresh(client, rp, body["refresh_token"]).json
    assert "verified_claims" in userinfo(client, refreshed["access_token"]).json
