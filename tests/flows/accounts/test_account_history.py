"""/account/history: every release, sign-in, consent and touch, newest first, by company."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from freezegun import freeze_time

from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.kiosk.models import TouchEvent
from tests import factories
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.oauth import tokens_for
from tests.helpers.oauth import userinfo


@pytest.fixture
def resident(app):
    return factories.resident()


def kiosk(company_id: str, location="北2条西4丁目 交差点広場") -> str:
    rp = factories.rp(company_id, grant_types=["client_credentials"], redirect_uris=None,
                      scopes=["touch_events"])
    db.session.add(Kiosk(client_id=rp.client_id, location=location))
    db.session.commit()
    return rp.client_id


def touch(client_id: str, resident_id: str | None, target: str, at: dt.datetime) -> None:
    db.session.add(TouchEvent(client_id=client_id, resident_id=resident_id, occurred_at=at,
                              target=target, event_id=f"{target}-{at.timestamp()}"))
    db.session.commit()


def titles(html: str) -> list[str]:
    return re.findall(r'<p class="event-title">([^<]+)</p>', html)


def test_history_is_an_html_page_that_needs_a_sign_in(client, resident):
    """Test that /account/history is HTML for the signed-in resident and a redirect otherwise."""
    assert client.get("/account/history").status_code == 303
    sign_in(client)
    page = client.get("/account/history")
    assert page.status_code == 200 and page.mimetype == "text/html"


def test_release_shows_company_service_items_and_when(client, resident):
    """Test that a UserInfo release appears with the company, the service and the items."""
    rp = factories.rp(factories.company("A社"))
    issued = tokens_for(client, rp, scope="openid name email")
    userinfo(client, issued["access_token"])
    page = client.get("/account/history").text
    assert titles(page)[:4] == ["サービスへの情報提供", "サービスへの情報提供", "同意", "Machi IDにログイン"]
    assert "XXXサービス（提供者：A社）" in page
    assert "姓名（フリガナ）、メールアドレス" in page
    assert "サービスがあとから取得したとき" in page and "UserInfo" not in page
    assert "サービスにログインしたとき" in page and "IDトークン" not in page
    assert "(日本時間)" in page


def test_withdrawal_and_account_changes_appear(client, resident):
    """Test that consent withdrawal and a profile change are listed, newest first."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid email")
    post_form(client, "/account/consents", {"client_id": rp.client_id, "confirm": "yes"})
    post_form(client, "/account/profile", {"locality": "札幌市北区", "postal_code": "001-0010"})
    assert titles(client.get("/account/history").text)[:2] == ["登録情報の変更", "同意の取り消し"]


def test_touch_events_show_kiosk_place_and_content(client, resident):
    """Test that touches recorded against the resident show the kiosk, where it stands and what."""
    kiosk_id = kiosk(factories.company("C社"))
    touch(kiosk_id, resident.id, "event-guide/snow-festival", utcnow() - dt.timedelta(minutes=5))
    touch(kiosk_id, None, "anonymous-touch", utcnow() - dt.timedelta(minutes=4))
    sign_in(client)
    page = client.get("/account/history").text
    assert "サイネージ端末へのタッチ" in page
    assert "場所：北2条西4丁目 交差点広場" in page
    assert "コンテンツ：event-guide/snow-festival" in page
    assert "anonymous-touch" not in page


def test_pages_are_newest_first_across_both_sources(client, resident):
    """Test pagination: 30 per page, newest first, touches and audit rows interleaved by time."""
    kiosk_id = kiosk(factories.company("C社"))
    start = utcnow() - dt.timedelta(days=1)
    for i in range(35):
        with freeze_time(start + dt.timedelta(minutes=2 * i)):
            record(AuditTag.CLAIMS_RELEASE, resident_id=resident.id, claims=["email"],
                   channel="userinfo")
            db.session.commit()
        touch(kiosk_id, resident.id, f"content-{i:02d}", start + dt.timedelta(minutes=2 * i + 1))
    sign_in(client)
    first = client.get("/account/history").text
    assert "3ページ中1ページ目" in first
    times = re.findall(r'<time datetime="([^"]+)"', first)
    assert len(times) == 30 and times == sorted(times, reverse=True)
    assert titles(first)[0] == "Machi IDにログイン"  # the sign-in just now is the newest
    assert "content-34" in first
    last = client.get("/account/history", query_string={"page": 3}).text
    last_times = re.findall(r'<time datetime="([^"]+)"', last)
    # 35 releases + 35 touches + registration, terms and the sign-in = 73 entries
    assert len(last_times) == 73 - 60
    assert max(last_times) < min(times)
    assert "content-00" in last
    assert 'rel="prev"' in last and 'rel="next"' not in last


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999", "3.5"])
def test_odd_page_numbers_show_a_valid_page(client, resident, page):
    """Test that junk or out-of-range page numbers fall back to a valid page, never a 500."""
    sign_in(client)
    response = client.get("/account/history", query_string={"page": page})
    assert response.status_code == 200


def test_filter_by_company(client, resident):
    """Test that ?company= keeps only that company's rows, including its kiosks' touches."""
    a = factories.rp(factories.company("A社"))
    b_company = factories.company("B社")
    b = factories.rp(b_company)
    tokens_for(client, a, scope="openid email")
    tokens_for(client, b, scope="openid email")
    kiosk_id = kiosk(b_company)
    touch(kiosk_id, resident.id, "b-content", utcnow())
    page = client.get("/account/history").text
    assert f'<option value="{a.company_id}">A社</option>' in page
    filtered = client.get("/account/history", query_string={"company": b_company}).text
    assert "提供者：A社" not in filtered
    assert "提供者：B社" in filtered and "b-content" in filtered
    assert "Machi IDにログイン" not in titles(filtered)  # sign-ins belong to no company
    unknown = client.get("/account/history", query_string={"company": "co_NOPE"}).text
    assert "提供者：A社" in unknown and "提供者：B社" in unknown


def test_other_residents_rows_are_never_shown(app, client, resident):
    """Test that the history holds only the signed-in resident's rows."""
    jiro = factories.resident("jiro@example.jp")
    kiosk_id = kiosk(factories.company("C社"))
    touch(kiosk_id, jiro.id, "jiros-touch", utcnow())
    record(AuditTag.CONSENT_GRANT, resident_id=jiro.id, scopes=["openid"])
    db.session.commit()
    sign_in(client)
    page = client.get("/account/history").text
    assert "jiros-touch" not in page
    assert titles(page) == ["Machi IDにログイン", "利用規約に同意（2026-04版）", "コンソーシアムIDの発行"]


def test_history_in_english(client, resident):
    """Test that the history page and its entries are in English on request."""
    rp = factories.rp()
    tokens_for(client, rp, scope="openid email")
    client.get("/lang/en")
    page = client.get("/account/history").text
    assert "Usage history" in page and "Information provided" in page
    assert "Signed in to Machi ID" in page
