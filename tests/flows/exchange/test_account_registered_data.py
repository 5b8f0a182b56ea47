"""/account/data: the registered data member companies sent, by source company, and the
resident's control over it (delete, dispute, stop and resume collection)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp.access import security_events
from idp.audit.tags import AuditTag
from idp.exchange import residents
from idp.exchange.models import CollectionStop
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests import factories
from tests.helpers.accounts import Inputs
from tests.helpers.accounts import post_form
from tests.helpers.accounts import sign_in
from tests.helpers.accounts import tags
from tests.helpers.exchange_residents import contribute
from tests.helpers.exchange_residents import contributor

PAGE = "/account/data"


@pytest.fixture
def hanako(app):
    return factories.resident()


@pytest.fixture
def jiro(app):
    return factories.resident("jiro@example.jp")


@pytest.fixture
def a(app):
    return contributor("A社")


def records() -> list[RegisteredRecord]:
    return list(db.session.scalars(select(RegisteredRecord).order_by(RegisteredRecord.id)))


def test_page_needs_a_sign_in(client, hanako):
    """Test that /account/data sends a visitor to the login page and back."""
    response = client.get(PAGE)
    assert response.status_code == 303
    assert response.location == "/login?next=/account/data"


def test_page_lists_items_by_company_with_how_and_when(client, hanako, jiro, a):
    """Test that each item shows its category, value, source company, contributing service,
    the contract's purpose and the times; another resident's items are not shown."""
    b = contributor("B社")
    contribute(a, hanako.id, "language", "ja")
    contribute(a, hanako.id, "household", {"members": 3, "children": 1})
    contribute(b, hanako.id, "occupation", "company_employee")
    contribute(a, jiro.id, "language", "ko-secret")
    sign_in(client)
    page = client.get(PAGE)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.text
    assert "会員企業から収集した登録データ" in html
    assert html.index("A社") < html.index("B社")
    assert "使用言語" in html and "家族構成" in html and "職業" in html
    assert "members: 3 / children: 1" in html and "company_employee" in html
    assert "XXXサービス" in html and "会員サービスの改善" in html
    assert "収集日時" in html and "Machi IDが受け取った日時" in html
    assert "収集中：2項目を保有しています" in html
    assert "ko-secret" not in html
    assert Inputs(html).unlabelled() == []
    assert "<script" not in html


def test_page_in_english(client, hanako, a):
    contribute(a, hanako.id, "language", "ja")
    sign_in(client)
    html = client.get(PAGE, query_string={"ui_locales": "en"},
                      headers={"Accept-Language": "en"}).text
    assert "Registered data from member companies" in html
    assert "Language" in html and "Collected through" in html


def test_overview_links_to_the_page(client, hanako):
    sign_in(client)
    assert 'href="/account/data"' in client.get("/account").text


def test_empty_page_says_nothing_is_held(client, hanako):
    sign_in(client)
    assert "あなたについてデータを送った会員企業はなく" in client.get(PAGE).text


def test_delete_an_item(client, hanako, a):
    """Test that the delete form removes the item, says so, and audits it."""
    row = contribute(a, hanako.id, "language", "ja")
    kept = contribute(a, hanako.id, "occupation", "student")
    sign_in(client)
    response = post_form(client, PAGE, {}, action=f"/account/data/items/{row.id}/delete")
    assert response.status_code == 303 and response.location.endswith(PAGE)
    assert [r.id for r in records()] == [kept.id]
    assert "A社から収集した項目を削除しました" in client.get(PAGE).text
    (event,) = tags(AuditTag.RESIDENT_DATA_DELETE)
    assert event.resident_id == hanako.id


def test_dispute_an_item(client, hanako, a):
    """Test that a dispute keeps the item, flags it with the note and shows it as disputed."""
    row = contribute(a, hanako.id, "occupation", "student")
    sign_in(client)
    response = post_form(client, PAGE, {"note": "今は会社員です"},
                         action=f"/account/data/items/{row.id}/dispute")
    assert response.status_code == 303
    db.session.refresh(row)
    assert row.disputed_at is not None and row.dispute_note == "今は会社員です"
    assert not residents.releasable(row)
    html = client.get(PAGE).text
    assert "A社に項目の誤りを伝えました" in html
    assert "に誤りを指摘しました" in html and "今は会社員です" in html
    assert len(tags(AuditTag.RESIDENT_DATA_DISPUTE)) == 1


@pytest.mark.parametrize("note", ["", "   ", "あ" * 501])
def test_dispute_with_a_bad_note_is_refused_and_shown_again(client, hanako, a, note):
    row = contribute(a, hanako.id, "occupation", "student")
    sign_in(client)
    response = post_form(client, PAGE, {"note": note},
                         action=f"/account/data/items/{row.id}/dispute")
    assert response.status_code == 400
    assert "誤っている点を1〜500文字で書いてください。" in response.text
    assert f'id="note-{row.id}-error"' in response.text
    db.session.refresh(row)
    assert row.disputed_at is None
    assert tags(AuditTag.RESIDENT_DATA_DISPUTE) == []


def test_stop_collection_without_deletion(client, hanako, a):
    """Test that stopping keeps the items, records the stop and shows it."""
    contribute(a, hanako.id, "language", "ja")
    sign_in(client)
    response = post_form(client, PAGE, {},
                         action=f"/account/data/companies/{a.company_id}/stop")
    assert response.status_code == 303
    assert residents.collection_stopped(hanako.id, a.company_id)
    assert len(records()) == 1
    html = client.get(PAGE).text
    assert "A社からの収集を停止しました" in html
    assert "収集を停止しました。この企業が送るあなたのデータは受け付けません" in html
    assert "A社からの収集を再開する" in html
    assert "A社が送った項目を削除する" in html


def test_stop_collection_with_deletion(client, hanako, jiro, a):
    contribute(a, hanako.id, "language", "ja")
    contribute(a, hanako.id, "occupation", "student")
    theirs = contribute(a, jiro.id, "language", "en")
    sign_in(client)
    assert 'name="delete_sent"' in client.get(PAGE).text
    response = post_form(client, PAGE, {"delete_sent": "yes"},
                         action=f"/account/data/companies/{a.company_id}/stop")
    assert response.status_code == 303
    assert [r.id for r in records()] == [theirs.id]
    assert "この企業が送った2項目を削除しました。" in client.get(PAGE).text
    (event,) = tags(AuditTag.COLLECTION_STOP)
    assert event.data["records_deleted"] == 2


def test_stop_before_anything_arrives(client, hanako, a):
    """Test that a company with a contract in force can be stopped before it sends anything."""
    sign_in(client)
    html = client.get(PAGE).text
    assert "データ利用契約を結んでおり" in html
    post_form(client, PAGE, {}, action=f"/account/data/companies/{a.company_id}/stop")
    assert residents.collection_stopped(hanako.id, a.company_id)


def test_resume_collection(client, hanako, a):
    residents.stop(hanako.id, a.company_id)
    db.session.commit()
    sign_in(client)
    response = post_form(client, PAGE, {},
                         action=f"/account/data/companies/{a.company_id}/resume")
    assert response.status_code == 303
    assert not residents.collection_stopped(hanako.id, a.company_id)
    assert "A社からの収集を再開しました。" in client.get(PAGE).text
    assert len(tags(AuditTag.COLLECTION_RESUME)) == 1


def test_resume_without_a_stop_is_404(client, hanako, a):
    sign_in(client)
    response = post_form(client, PAGE, {},
                         action=f"/account/data/companies/{a.company_id}/resume")
    assert response.status_code == 404


@pytest.mark.parametrize("action", ["delete", "dispute"])
def test_another_residents_item_is_404_and_untouched(client, hanako, jiro, a, action):
    """Test that another resident's item id answers exactly like an id that does not exist."""
    theirs = contribute(a, jiro.id, "language", "en-secret")
    sign_in(client)
    response = post_form(client, PAGE, {"note": "x"},
                         action=f"/account/data/items/{theirs.id}/{action}")
    missing = post_form(client, PAGE, {"note": "x"},
                        action=f"/account/data/items/{theirs.id + 1000}/{action}")
    assert response.status_code == missing.status_code == 404
    assert response.text.replace(f"/items/{theirs.id}/", "/items/N/") == missing.text.replace(
        f"/items/{theirs.id + 1000}/", "/items/N/")
    assert "en-secret" not in response.text and "A社" not in response.text
    db.session.refresh(theirs)
    assert theirs.disputed_at is None
    assert records() == [theirs]
    assert tags(AuditTag.RESIDENT_DATA_DELETE, AuditTag.RESIDENT_DATA_DISPUTE) == []


@pytest.mark.parametrize("item_id", ["abc", "-1", "0", "1" * 30])
def test_junk_item_ids_are_404(client, hanako, item_id):
    sign_in(client)
    for action in ("delete", "dispute"):
        response = post_form(client, "/account", {"note": "x"},
                             action=f"/account/data/items/{item_id}/{action}")
        assert response.status_code == 404


def test_unrelated_company_cannot_be_stopped(client, hanako, a):
    stranger = factories.company("無関係社")
    sign_in(client)
    for company_id in (stranger, "co_nope"):
        response = post_form(client, PAGE, {},
                             action=f"/account/data/companies/{company_id}/stop")
        assert response.status_code == 404
    assert db.session.scalars(select(CollectionStop)).all() == []


@pytest.mark.parametrize("path", ["items/{item}/delete", "items/{item}/dispute",
                                  "companies/{company}/stop"])
def test_posts_without_csrf_change_nothing(client, hanako, a, path):
    """Test that every form of the page is refused without its CSRF token."""
    row = contribute(a, hanako.id, "language", "ja")
    sign_in(client)
    url = "/account/data/" + path.format(item=row.id, company=a.company_id)
    response = client.post(url, data={"note": "wrong", "delete_sent": "yes"})
    assert response.status_code == 400
    db.session.refresh(row)
    assert records() == [row] and row.disputed_at is None
    assert not residents.collection_stopped(hanako.id, a.company_id)


def test_resume_without_csrf_changes_nothing(client, hanako, a):
    residents.stop(hanako.id, a.company_id)
    db.session.commit()
    sign_in(client)
    response = client.post(f"/account/data/companies/{a.company_id}/resume")
    assert response.status_code == 400
    assert residents.collection_stopped(hanako.id, a.company_id)


def test_get_on_a_form_url_changes_nothing(client, hanako, a):
    row = contribute(a, hanako.id, "language", "ja")
    sign_in(client)
    assert client.get(f"/account/data/items/{row.id}/delete").status_code == 405
    assert records() == [row]


def test_every_form_posts_a_csrf_token(client, hanako, a):
    contribute(a, hanako.id, "language", "ja")
    sign_in(client)
    html = client.get(PAGE).text
    forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", html, re.S)
    assert len(forms) == 3  # dispute, delete, stop
    assert all('name="csrf_token"' in form for form in forms)


def test_dispute_from_the_page_tells_the_contributor(client, hanako):
    """Test that the dispute form queues the registered-data-disputed SET for the
    contributing company's client with a receiver, with the note."""
    source = contributor("A社", event_receiver_uri="https://a.example.jp/events")
    row = contribute(source, hanako.id, "language", "ja", record_id="A-1")
    sign_in(client)
    post_form(client, PAGE, {"note": "英語です"}, action=f"/account/data/items/{row.id}/dispute")
    db.session.rollback()
    (message,) = db.session.scalars(select(OutboxMessage)
                                    .where(OutboxMessage.kind == "security_event"))
    assert message.payload["aud"] == source.client_id
    assert message.payload["events"][security_events.REGISTERED_DATA_DISPUTED]["note"] == "英語です"


def test_items_of_a_retired_category_are_still_shown(client, hanako, a):
    """Test that values held of a category since retired stay on the page (by the
    category's label) until they expire, so the resident can still see and delete them."""
    from idp.exchange import categories
    from idp.exchange import contracts

    contribute(a, hanako.id, "occupation", "company_employee")
    contracts.end(a.contract_id)
    categories.retire("occupation")
    db.session.commit()
    sign_in(client)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "職業" in page.text and "company_employee" in page.text
