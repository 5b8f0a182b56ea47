"""The device flow's consent shows item 5 like the consent page and links on approval."""

from __future__ import annotations

from sqlalchemy import select

from idp.exchange.models import DataLink
from idp.extensions import db
from tests import factories
from tests.helpers import data_links
from tests.helpers import device
from tests.helpers.oauth import userinfo

SCOPE = "openid registered:language"


def test_device_consent_shows_sources_and_links_on_approval(client):
    """Test that the phone's consent page names A社 with the value and the expiry select,
    and that approving makes the link, so the device's token receives the value."""
    resident = factories.resident()
    setup = data_links.setup(grant_types=[device.GRANT], scopes=SCOPE.split())
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    started = device.authorize(client, setup.rp, scope=SCOPE)
    response = device.approve(client, started["user_code"])
    assert response.status_code == 200
    db.session.rollback()
    (link,) = db.session.scalars(select(DataLink).where(DataLink.resident_id == resident.id))
    assert link.client_id == setup.rp.client_id and link.expires_at is not None
    token = device.poll(client, setup.rp, started["device_code"])
    assert token.status_code == 200, token.text
    info = userinfo(client, token.json["access_token"]).json
    assert info["registered_data"] == {"language": {"value": "vi", "sources": ["A社"]}}


def test_device_consent_page_shows_item_5(client):
    resident = factories.resident()
    setup = data_links.setup(grant_types=[device.GRANT], scopes=SCOPE.split())
    data_links.contribute(resident.id, setup.source_company, setup.source_contract, "vi")
    started = device.authorize(client, setup.rp, scope=SCOPE)
    factories.Browser(client).login()
    page = client.get("/device", query_string={"user_code": started["user_code"]})
    answer = client.post("/device", data={"user_code": started["user_code"],
                                          "csrf_token": factories.csrf(page.text)})
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    assert "A社から：vi" in page.text and 'name="link_expiry"' in page.text
    assert "使用言語" in page.text
