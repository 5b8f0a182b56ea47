"""Consent receipts (Kantara Consent Receipt v1.1) for every consent given or withdrawn."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sqlalchemy import select

from idp.accounts.models import Resident
from idp.clients.models import Client
from idp.consent.models import ConsentReceipt
from idp.extensions import db
from tests import factories
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.oauth import tokens_for

REQUIRED = {"version", "jurisdiction", "consentTimestamp", "collectionMethod",
            "consentReceiptID", "piiPrincipalId", "piiControllers", "policyUrl", "services",
            "sensitive", "spiCat"}


@pytest.fixture
def rp(app):
    factories.resident()
    return factories.rp(factories.company("A社"), policy_uri="https://a.example.jp/privacy",
                        purpose_en="To provide the test service")


def receipts() -> list[ConsentReceipt]:
    db.session.expire_all()
    return list(db.session.scalars(select(ConsentReceipt).order_by(ConsentReceipt.issued_at)))


def download_links(client) -> list[str]:
    page = client.get("/account/consents")
    return re.findall(r'href="(/account/consents/receipts/[^"]+\.json)"', page.text)


def test_consent_issues_a_receipt_with_the_kantara_fields(client, rp):
    """Test that a consent produces a stored receipt with every required v1.1 field, correctly filled."""
    tokens_for(client, rp, scope="openid name email")
    (receipt,) = receipts()
    doc = receipt.document
    resident = db.session.scalar(select(Resident))
    assert set(doc) >= REQUIRED
    assert doc["version"] == "KI-CR-v1.1.0"
    assert doc["jurisdiction"] == "JP"
    assert isinstance(doc["consentTimestamp"], int)
    assert doc["consentReceiptID"] == receipt.id and uuid.UUID(receipt.id).version == 4
    assert doc["language"] == "ja"
    assert doc["piiPrincipalId"] == resident.id
    (controller,) = doc["piiControllers"]
    assert controller["piiController"] == "A社"
    assert controller["piiControllerUrl"] == "https://a.example.jp/privacy"
    assert {"contact", "address", "email", "phone"} <= set(controller)
    assert doc["policyUrl"] == "https://a.example.jp/privacy"
    (service,) = doc["services"]
    assert service["service"] == "XXXサービス"
    (purpose,) = service["purposes"]
    assert purpose["purpose"] == "テスト用サービスの提供"
    assert purpose["consentType"] == "EXPLICIT"
    assert purpose["piiCategory"] == ["コンソーシアムID", "姓名（フリガナ）", "メールアドレス"]
    assert purpose["primaryPurpose"] is True
    assert purpose["thirdPartyDisclosure"] is False
    assert "/account/consents" in purpose["termination"]
    assert isinstance(purpose["purposeCategory"], list) and purpose["purposeCategory"]
    assert doc["sensitive"] is False and doc["spiCat"] == []
    extension = doc["extensions"]["jp.machi-id"]
    assert extension["event"] == "given"
    assert extension["scopes"] == ["openid", "name", "email"]
    assert receipt.event == "given"


def test_unticked_items_are_not_in_the_receipt(client, rp):
    """Test that the receipt lists only the items granted, and records the declined ones."""
    tokens_for(client, rp, scope="openid name email", consent_scopes=["openid", "email"])
    doc = receipts()[0].document
    assert doc["services"][0]["purposes"][0]["piiCategory"] == ["コンソーシアムID", "メールアドレス"]
    assert doc["extensions"]["jp.machi-id"]["declinedScopes"] == ["name"]


def test_withdrawal_issues_its_own_receipt(client, rp):
    """Test that withdrawing produces a second receipt marked as a withdrawal."""
    tokens_for(client, rp, scope="openid email")
    post_form(client, "/account/consents", {"client_id": rp.client_id, "confirm": "yes"})
    given, withdrawn = receipts()
    assert (given.event, withdrawn.event) == ("given", "withdrawn")
    doc = withdrawn.document
    assert doc["extensions"]["jp.machi-id"]["event"] == "withdrawn"
    assert "withdrawnAt" in doc["extensions"]["jp.machi-id"]
    assert "取り消し" in doc["collectionMethod"]
    assert "取り消し" in doc["services"][0]["purposes"][0]["termination"]
    assert doc["consentReceiptID"] != given.document["consentReceiptID"]


def test_a_changed_consent_gets_a_new_receipt(client, rp):
    """Test that consenting again with other items (prompt=consent) issues another receipt."""
    tokens_for(client, rp, scope="openid email")
    tokens_for(client, rp, scope="openid email name", prompt="consent")
    first, second = receipts()
    assert second.document["services"][0]["purposes"][0]["piiCategory"] == [
        "コンソーシアムID", "姓名（フリガナ）", "メールアドレス"]
    assert first.document["services"][0]["purposes"][0]["piiCategory"] == [
        "コンソーシアムID", "メールアドレス"]


def test_receipts_are_downloadable_from_the_consents_page(client, rp):
    """Test that each receipt has a link on /account/consents that downloads it as JSON."""
    tokens_for(client, rp, scope="openid email")
    post_form(client, "/account/consents", {"client_id": rp.client_id, "confirm": "yes"})
    links = download_links(client)
    assert len(links) == 2
    for link, receipt in zip(sorted(links), sorted(receipts(), key=lambda r: r.id), strict=True):
        response = client.get(link)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert json.loads(response.text) == receipt.document
        assert receipt.id in link


def test_receipt_is_kept_as_issued(client, rp):
    """Test that a later rename of the service does not change a receipt already issued."""
    tokens_for(client, rp, scope="openid email")
    db.session.get(Client, rp.client_id).name = "新しい名前"
    db.session.commit()
    (link,) = download_links(client)
    assert client.get(link).json["services"][0]["service"] == "XXXサービス"


def test_receipt_is_in_the_language_of_the_consent_page(client, rp):
    """Test that a consent given on English pages gets an English receipt."""
    tokens_for(client, rp, scope="openid email", ui_locales="en")
    doc = receipts()[0].document
    assert doc["language"] == "en"
    purpose = doc["services"][0]["purposes"][0]
    assert purpose["piiCategory"] == ["Consortium ID", "Email address"]
    assert purpose["purpose"] == "To provide the test service"


def test_other_residents_cannot_download_a_receipt(app, client, rp):
    """Test that another resident, an unknown id and an anonymous visitor get no receipt."""
    tokens_for(client, rp, scope="openid email")
    (link,) = download_links(client)
    factories.resident("jiro@example.jp")
    other = app.test_client()
    sign_in(other, "jiro@example.jp")
    assert other.get(link).status_code == 404
    assert client.get("/account/consents/receipts/00000000-0000-4000-8000-000000000000.json"
                      ).status_code == 404
    assert app.test_client().get(link).status_code == 303
