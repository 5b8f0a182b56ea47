"""Pairwise subject identifiers (OIDC Core §8.1): one random `sub` per resident and company."""

from __future__ import annotations

import base64
import hashlib
import hmac

from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import PairwiseSubject
from idp.access.subjects import per_company_id
from idp.access.subjects import subject_for
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import ResidentBrowser
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo


def sub_for(client, rp, browser=None, **params) -> str:
    """The `sub` of the ID token the RP receives after a code flow."""
    issued = tokens_for(client, rp, scope="openid", browser=browser, **params)
    return jwt_claims(issued["id_token"])["sub"]


def stored_sub(resident_id: str, company_id: str) -> str | None:
    return db.session.scalar(select(PairwiseSubject.sub).where(
        PairwiseSubject.resident_id == resident_id, PairwiseSubject.company_id == company_id))


def test_same_company_clients_see_same_sub(client):
    """Test that two clients of one company see the same sub for a resident."""
    first = factories.rp()
    second = factories.rp(first.company_id)
    factories.resident()
    browser = factories.Browser(client)
    assert sub_for(client, first, browser) == sub_for(client, second, browser)


def test_different_companies_see_different_subs(client):
    """Test that clients of two companies see different subs for the same resident."""
    first = factories.rp()
    second = factories.rp()
    factories.resident()
    browser = factories.Browser(client)
    assert sub_for(client, first, browser) != sub_for(client, second, browser)


def test_sub_is_stable_across_sign_ins_and_stored(client, app):
    """Test that the sub is the same on a later sign-in from another browser and is the stored row."""
    rp = factories.rp()
    resident = factories.resident()
    first = sub_for(client, rp)
    other_browser = app.test_client()
    second = sub_for(other_browser, rp, factories.Browser(other_browser))
    assert first == second == stored_sub(resident.id, rp.company_id)


def test_sub_is_the_same_on_every_channel(client):
    """Test that the ID token, userinfo and introspection all carry the same sub."""
    rp = factories.rp()
    factories.resident()
    issued = tokens_for(client, rp, scope="openid email")
    sub = jwt_claims(issued["id_token"])["sub"]
    assert userinfo(client, issued["access_token"]).json["sub"] == sub
    assert introspect(client, rp, issued["access_token"]).json["sub"] == sub


def test_sub_does_not_reveal_resident_id(client):
    """Test that the sub is not the resident id and does not contain it."""
    rp = factories.rp()
    resident = factories.resident()
    sub = sub_for(client, rp)
    assert sub != resident.id
    assert resident.id.lower() not in sub.lower()
    assert resident.display_id not in sub


def test_sub_does_not_reveal_company(client):
    """Test that the sub does not contain the company id."""
    rp = factories.rp()
    factories.resident()
    sub = sub_for(client, rp)
    assert rp.company_id not in sub
    assert rp.client_id not in sub


def test_two_residents_get_different_subs(client, app):
    """Test that two residents at one company get different subs."""
    rp = factories.rp()
    factories.resident()
    factories.resident("taro@example.jp", family_name="札幌", given_name="太郎")
    hanako = sub_for(client, rp)
    other_browser = app.test_client()
    taro = sub_for(other_browser, rp, ResidentBrowser(other_browser, "taro@example.jp"))
    assert hanako != taro


def test_subject_for_twice_returns_one_value_and_one_row(app):
    """Test that subject_for called twice in a row returns the same sub and leaves one row."""
    company_id = factories.company()
    resident = factories.resident()
    first = subject_for(resident.id, company_id)
    second = subject_for(resident.id, company_id)
    db.session.commit()
    assert first == second
    assert db.session.scalar(select(func.count()).select_from(PairwiseSubject).where(
        PairwiseSubject.resident_id == resident.id)) == 1
    assert stored_sub(resident.id, company_id) == first


def test_subject_for_is_per_company(app):
    """Test that subject_for gives one resident one row per company."""
    resident = factories.resident()
    one, two = factories.company("A社"), factories.company("B社")
    assert subject_for(resident.id, one) != subject_for(resident.id, two)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(PairwiseSubject).where(
        PairwiseSubject.resident_id == resident.id)) == 2


def test_subject_for_keeps_existing_row(app):
    """Test that subject_for returns a stored sub rather than making a new one."""
    resident = factories.resident()
    company_id = factories.company()
    db.session.add(PairwiseSubject(resident_id=resident.id, company_id=company_id,
                                   sub="preexisting-sub-value"))
    db.session.commit()
    assert subject_for(resident.id, company_id) == "preexisting-sub-value"


def test_per_company_ids_are_keyed_per_company_and_kind(app):
    """Test that per_company_id gives one company the same value each time, another company
    and another kind of row a different one, and is the HMAC the sid has always been
    (sids in ID tokens already issued still match their logout tokens)."""
    first = per_company_id("co_A", "sid", 7)
    assert first == per_company_id("co_A", "sid", 7)
    assert len({first, per_company_id("co_B", "sid", 7), per_company_id("co_A", "proofing", 7),
                per_company_id("co_A", "sid", 8)}) == 4
    mac = hmac.new(app.config["SECRET_KEY"].encode(), b"sid:co_A:7", hashlib.sha256).digest()
    assert first == base64.urlsafe_b64encode(mac[:18]).decode()
