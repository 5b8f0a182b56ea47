"""A client's event receiver URI (RFC 8935 push of security events), set by the CLI
(`idp clients create/update --event-receiver-uri`) and the console's client form."""

from __future__ import annotations

import json

import pytest

from idp.clients.models import Client
from idp.extensions import db
from tests import factories
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin


def one_json_object(result) -> dict:
    assert result.exit_code == 0, (result.output, result.exception)
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def company_id(cli) -> str:
    return one_json_object(cli("companies", "create", "--name", "A社", "--json"))["id"]


def create(cli, company_id, *extra):
    return cli("clients", "create", "--company", company_id, "--name", "N",
               "--redirect-uri", "https://rp.example.jp/cb", *extra)


def test_create_with_a_receiver_and_show_it(cli, company_id):
    """Test that `clients create --event-receiver-uri … --json` prints one object and
    `clients show --json` shows the receiver."""
    data = one_json_object(create(cli, company_id, "--event-receiver-uri",
                                  "https://rp.example.jp/events", "--json"))
    assert set(data) == {"client_id", "client_secret"}
    assert db.session.get(Client, data["client_id"]).event_receiver_uri == (
        "https://rp.example.jp/events")
    shown = one_json_object(cli("clients", "show", data["client_id"], "--json"))
    assert shown["event_receiver_uri"] == "https://rp.example.jp/events"
    listed = one_json_object(cli("clients", "list", "--json"))["clients"]
    assert listed[0]["event_receiver_uri"] == "https://rp.example.jp/events"


def test_without_the_option_there_is_no_receiver(cli, company_id):
    """Test that a client registered without the option has none (null in show)."""
    client_id = one_json_object(create(cli, company_id, "--json"))["client_id"]
    assert one_json_object(cli("clients", "show", client_id, "--json"))[
        "event_receiver_uri"] is None


@pytest.mark.parametrize("uri", ["http://rp.example.jp/events", "https://rp.example.jp/e#x",
                                 "ftp://rp.example.jp/events", "not a url"])
def test_a_receiver_must_be_https_or_loopback_http(cli, company_id, uri):
    """Test that the receiver follows the redirect URI rules: https, http only on
    loopback, no fragment; the refusal says so and registers nothing."""
    result = create(cli, company_id, "--event-receiver-uri", uri, "--json")
    assert result.exit_code != 0
    assert "event receiver URI" in result.stderr and result.stdout == ""
    assert db.session.query(Client).count() == 0


def test_loopback_http_receiver_is_allowed(cli, company_id):
    """Test that http on 127.0.0.1 is allowed (development receivers)."""
    data = one_json_object(create(cli, company_id, "--event-receiver-uri",
                                  "http://127.0.0.1:8080/events", "--json"))
    assert db.session.get(Client, data["client_id"]).event_receiver_uri == (
        "http://127.0.0.1:8080/events")


def test_update_sets_and_removes_the_receiver(cli, company_id):
    """Test that `clients update --event-receiver-uri` changes it, and '' removes it."""
    client_id = one_json_object(create(cli, company_id, "--json"))["client_id"]
    changed = one_json_object(cli("clients", "update", client_id, "--event-receiver-uri",
                                  "https://rp.example.jp/events", "--json"))
    assert changed == {"client_id": client_id, "changed": ["event_receiver_uri"]}
    one_json_object(cli("clients", "update", client_id, "--event-receiver-uri", "", "--json"))
    assert db.session.get(Client, client_id).event_receiver_uri is None


def test_the_console_shows_and_saves_the_receiver(client, app):
    """Test that the client page has the field with its value, and saving it works."""
    rp = factories.rp(event_receiver_uri="https://rp.example.jp/events")
    browser = AdminBrowser(client, enrolled_admin())
    assert browser.login().status_code == 303
    page = f"/admin/clients/{rp.client_id}"
    text = client.get(page).text
    assert 'name="event_receiver_uri"' in text and "https://rp.example.jp/events" in text
    response = browser.form(page, f"{page}/edit", name="XXXサービス",
                            redirect_uris=rp.redirect_uri,
                            grant_type=["authorization_code", "refresh_token"],
                            scope=factories.ALL_SCOPES, purpose="テスト用サービスの提供",
                            event_receiver_uri="https://rp.example.jp/events2")
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.get(Client, rp.client_id).event_receiver_uri == (
        "https://rp.example.jp/events2")
