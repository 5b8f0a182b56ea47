"""/transparency and /transparency.json: public, every device in service, ja/en, a static
map with no script and nothing from elsewhere."""

from __future__ import annotations

import re

import pytest

from idp.clients import service as clients
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors
from tests import factories


@pytest.fixture
def devices(app):
    company = factories.company("C社")
    kiosk, _, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目 交差点広場",
                                      latitude=43.06318, longitude=141.35370,
                                      contact="signage@c.example.jp")
    sensor, _, _ = sensors.create_sensor(
        company, "人流センサー（北側）",
        sensors.Placement("広場 北側入口", 43.06345, 141.35362, area="北側の歩道",
                          retention_days=90, contact="count@c.example.jp"))
    unplaced, _, _ = sensors.create_sensor(company, "仮設センサー", sensors.Placement("南側"))
    gone, _, _ = kiosks.create_kiosk(company, "撤去済みサイネージ", "旧位置")
    clients.revoke_client(gone.id)
    db.session.commit()
    return {"kiosk": kiosk.id, "sensor": sensor.id, "unplaced": unplaced.id, "gone": gone.id,
            "company": company}


def test_the_page_is_public_and_lists_every_device_in_service(client, devices):
    """Test that no sign-in is needed and each device has its anchored entry."""
    page = client.get("/transparency")
    assert page.status_code == 200
    assert f'id="kiosk-{devices["kiosk"]}"' in page.text
    assert f'id="sensor-{devices["sensor"]}"' in page.text
    assert f'id="sensor-{devices["unplaced"]}"' in page.text
    assert devices["gone"] not in page.text and "撤去済み" not in page.text
    for shown in ("C社", "北2条西4丁目 交差点広場", "北側の歩道", "signage@c.example.jp",
                  "count@c.example.jp", "90日間保存します。"):
        assert shown in page.text


def test_devices_of_a_suspended_company_are_not_listed(client, devices):
    """Test that a suspended company's kiosks and sensors leave the page, the map and the
    JSON (they record nothing then), and come back when it is reinstated."""
    other = factories.company("D社")
    theirs, _, _ = sensors.create_sensor(other, "D社センサー", sensors.Placement("南口", 43.0,
                                                                             141.3))
    db.session.commit()
    ours = devices["company"]
    clients.suspend_company(ours)
    db.session.commit()
    page = client.get("/transparency").text
    listed = {entry["id"] for entry in client.get("/transparency.json").json["devices"]}
    for device in ("kiosk", "sensor", "unplaced"):
        assert devices[device] not in page
        assert not any(devices[device] in anchor for anchor in listed)
    assert f'id="sensor-{theirs.id}"' in page and f"sensor-{theirs.id}" in listed
    clients.reinstate_company(ours)
    db.session.commit()
    page = client.get("/transparency").text
    assert f'id="kiosk-{devices["kiosk"]}"' in page


def test_the_page_speaks_japanese_first_and_english_on_request(client, devices):
    """Test ja by default, en with ?lang=en (a QR code printed for English readers)."""
    ja = client.get("/transparency")
    en = client.get("/transparency?lang=en")
    assert '<html lang="ja">' in ja.text and "通過した人数" in ja.text
    assert '<html lang="en">' in en.text and "Numbers of passers-by" in en.text
    assert "Kept for 90 days." in en.text


def test_the_map_is_inline_svg_linking_to_the_entries(client, devices):
    """Test one marker per placed device, each a link to its anchor; none for the unplaced."""
    page = client.get("/transparency").text
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert f'href="#kiosk-{devices["kiosk"]}"' in svg
    assert f'href="#sensor-{devices["sensor"]}"' in svg
    assert devices["unplaced"] not in svg
    assert svg.count("<circle") == 1 and svg.count("<a ") == 2


def test_the_page_is_csp_clean(client, devices):
    """Test no script, no inline style, no external resource; the CSP header is sent."""
    response = client.get("/transparency")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in response.text
    assert "style=" not in response.text
    assert not re.search(r'(src|href)="https?://', response.text)


def test_without_coordinates_there_is_no_map(client, app):
    """Test that the page says so rather than drawing an empty map."""
    company = factories.company("C社")
    sensors.create_sensor(company, "仮設", sensors.Placement("南側"))
    db.session.commit()
    page = client.get("/transparency?lang=en").text
    assert "<svg" not in page or 'class="transparency-map"' not in page
    assert "No device has registered coordinates yet." in page


def test_the_json_document_for_open_data(client, devices):
    """Test the JSON list: both languages per entry, coordinates, no secret, no resident."""
    response = client.get("/transparency.json")
    assert response.status_code == 200 and response.is_json
    data = response.json
    assert set(data) == {"publisher", "generated_at", "kiosk_session", "devices"}
    by_id = {d["id"]: d for d in data["devices"]}
    assert set(by_id) == {f"kiosk-{devices['kiosk']}", f"sensor-{devices['sensor']}",
                          f"sensor-{devices['unplaced']}"}
    kiosk = by_id[f"kiosk-{devices['kiosk']}"]
    assert kiosk["kind"] == "kiosk" and kiosk["company"] == "C社"
    assert (kiosk["latitude"], kiosk["longitude"]) == (43.06318, 141.3537)
    assert set(kiosk["records"]) == set(kiosk["purpose"]) == set(kiosk["retention"]) \
        == {"ja", "en"}
    assert data["kiosk_session"]["idle_timeout_seconds"] > 0
    assert "secret" not in response.text


def test_a_moved_device_appears_where_it_is_now(client, devices):
    """Test that the page follows the registrations."""
    kiosks.update_kiosk(devices["kiosk"], "北3条西4丁目")
    db.session.commit()
    assert "北3条西4丁目" in client.get("/transparency").text


def test_names_are_escaped_in_the_page_and_the_map(client, app):
    """Test that admin-entered names cannot inject markup into the SVG or the list."""
    company = factories.company("C社")
    sensors.create_sensor(company, '<script>alert(1)</script>"',
                          sensors.Placement('<b>x</b>', 43.0, 141.0))
    db.session.commit()
    page = client.get("/transparency").text
    assert "<script>alert(1)" not in page and "<b>x</b>" not in page
