"""The standard OIDC scopes (profile, email, address) as our consent items (OIDC Core §5.4).

Relying-party software asks ``openid profile email`` by default (mod_auth_openidc);
each standard scope is read as the finer scopes it covers (idp.scopes), so the
consent screen still lists every item and the resident can untick each.
"""

from __future__ import annotations

import re

from tests import factories
from tests.factories import Browser
from tests.helpers.oauth import consent_screen
from tests.helpers.oauth import redeem
from tests.helpers.oauth import userinfo


def listed_items(html: str) -> list[str]:
    return re.findall(r'class="item-check" type="checkbox" id="[^"]*" (?:name="scope" )?'
                      r'value="([^"]+)"', html)


def flow(client, rp, scope: str, ticked=None) -> dict:
    verifier, challenge = factories.pkce_pair()
    ticked = ticked or factories.ALL_SCOPES  # the form sends the boxes left ticked
    result = Browser(client).code_flow(rp, scope=scope, consent_scopes=ticked,
                                       code_challenge=challenge, code_challenge_method="S256")
    assert "code" in result, result
    response = redeem(client, rp, result["code"], verifier)
    assert response.status_code == 200, response.text
    return response.json


def test_default_rp_scope_lists_each_item_on_the_consent_screen(app, client):
    """Test that "openid profile email" shows user ID, name, birth year, gender and email."""
    factories.resident()
    rp = factories.rp()
    _, _, page = consent_screen(client, rp, "openid profile email")
    assert listed_items(page) == ["openid", "name", "birth_year", "gender", "email"]


def test_unticked_profile_item_is_not_granted_nor_released(app, client):
    """Test that unticking gender under "profile" leaves it out of the token and userinfo."""
    factories.resident()
    rp = factories.rp()
    issued = flow(client, rp, "openid profile email",
                  ticked=["openid", "name", "birth_year", "email"])
    # RFC 6749 §3.3: the granted scope, in our own scopes.
    assert issued["scope"] == "openid name birth_year email"
    claims = userinfo(client, issued["access_token"]).json
    assert set(claims) == {"sub", "name", "family_name", "given_name", "family_name#ja-Kana-JP",
                           "given_name#ja-Kana-JP", "birthdate", "email", "email_verified"}
    assert claims["name"] == "札幌 花子" and claims["birthdate"] == "1990"


def test_profile_claims_we_do_not_hold_are_not_released(app, client):
    """Test that profile releases only what we hold (no nickname, picture, zoneinfo …)."""
    factories.resident()
    rp = factories.rp()
    issued = flow(client, rp, "openid profile")
    assert issued["scope"] == "openid name birth_year gender"
    assert set(userinfo(client, issued["access_token"]).json) == {
        "sub", "name", "family_name", "given_name", "family_name#ja-Kana-JP",
        "given_name#ja-Kana-JP", "birthdate", "gender"}


def test_address_is_postal_code_and_municipality(app, client):
    """Test that the standard address scope releases the postal code item."""
    factories.resident()
    rp = factories.rp()
    issued = flow(client, rp, "openid address")
    assert issued["scope"] == "openid postal_code"
    assert userinfo(client, issued["access_token"]).json["address"] == {
        "postal_code": "060-0042", "locality": "札幌市中央区"}


def test_client_registered_for_fine_scopes_gets_what_it_is_allowed(app, client):
    """Test that profile covers only the finer scopes the client is registered for."""
    factories.resident()
    rp = factories.rp(scopes=["openid", "name", "email"])
    _, _, page = consent_screen(client, rp, "openid profile email")
    assert listed_items(page) == ["openid", "name", "email"]


def test_fine_scope_the_client_is_not_registered_for_is_still_refused(app, client):
    """Test that naming a fine scope outside the registration still answers invalid_scope."""
    factories.resident()
    rp = factories.rp(scopes=["openid", "name", "email"])
    _, challenge = factories.pkce_pair()
    response = Browser(client).authorize(rp, scope="openid profile gender",
                                         code_challenge=challenge, code_challenge_method="S256")
    assert factories.query(response.headers["Location"])["error"] == "invalid_scope"


def test_phone_is_not_supported(app, client):
    """Test that phone (we hold no phone number) is refused and not advertised."""
    factories.resident()
    rp = factories.rp()
    _, challenge = factories.pkce_pair()
    response = Browser(client).authorize(rp, scope="openid phone", code_challenge=challenge,
                                         code_challenge_method="S256")
    assert factories.query(response.headers["Location"])["error"] == "invalid_scope"
    assert "phone" not in client.get("/.well-known/openid-configuration").json[
        "scopes_supported"]


def test_discovery_lists_the_standard_scopes(client):
    """Test that scopes_supported lists profile, email and address with our own scopes."""
    supported = client.get("/.well-known/openid-configuration").json["scopes_supported"]
    assert {"openid", "profile", "email", "address", "name", "postal_code"} <= set(supported)


def test_profile_outside_the_registration_is_ignored(app, client):
    """Test that a standard scope covering nothing the client is registered for is dropped
    (RFC 6749 §3.3), here with client_credentials, which never carries resident scopes."""
    rp = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "scope": "profile touch_events"},
                           auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200, response.text
    assert response.json["scope"] == "touch_events"


def test_refresh_may_narrow_with_a_standard_scope(app, client):
    """Test that a refresh asking "openid profile" narrows the grant to the profile items."""
    factories.resident()
    rp = factories.rp()
    issued = flow(client, rp, "openid profile email offline_access")
    assert issued["scope"] == "openid name birth_year gender email offline_access"
    data = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
            "scope": "openid profile"}
    response = client.post("/token", data=data, auth=(rp.client_id, rp.client_secret))
    assert response.status_code == 200, response.text
    assert response.json["scope"] == "openid name birth_year gender"
