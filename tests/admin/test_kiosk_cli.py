"""`idp kiosks create` and `idp clients create` for kiosks."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from idp.cli import main
from idp.clients.models import Client
from idp.extensions import db
from idp.kiosk.models import Kiosk
from tests import factories

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def cli(migrated, *args):
    db.session.commit()
    env = {"IDP_DATABASE_URL": migrated, "IDP_ENVIRONMENT": "test",
           "IDP_ISSUER": "http://localhost"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_kiosks_create(app, migrated):
    """Test that `idp kiosks create` makes a confidential device-flow client and its kiosk."""
    company = factories.company("C社")
    result = cli(migrated, "kiosks", "create", "--company", company, "--name", "広場サイネージ",
                 "--location", "北2条西4丁目", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["client_id"] and data["client_secret"] and data["location"] == "北2条西4丁目"
    db.session.rollback()
    client = db.session.get(Client, data["client_id"])
    assert set(client.grant_types) == {DEVICE, "client_credentials"}
    assert set(client.scopes) == {"openid", "touch_events"}
    assert not client.is_public and client.secret_digest != data["client_secret"]
    assert db.session.get(Kiosk, client.id).location == "北2条西4丁目"


def test_clients_create_with_device_grant(app, migrated):
    """Test the contract command for a kiosk client without a redirect URI."""
    company = factories.company("C社")
    result = cli(migrated, "clients", "create", "--company", company, "--name", "K",
                 "--grant-type", DEVICE, "--grant-type", "client_credentials",
                 "--scope", "openid", "--scope", "touch_events", "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)) == {"client_id", "client_secret"}


def test_kiosks_create_needs_a_location_and_a_known_company(app, migrated):
    """Test that bad input fails with a message and leaves nothing behind."""
    company = factories.company("C社")
    result = cli(migrated, "kiosks", "create", "--company", company, "--name", "K",
                 "--location", "  ")
    assert result.exit_code != 0 and "location" in result.output
    result = cli(migrated, "kiosks", "create", "--company", "co_nope", "--name", "K",
                 "--location", "x")
    assert result.exit_code != 0
    db.session.rollback()
    assert db.session.scalars(select(Client)).all() == []


def test_clients_create_refuses_a_kiosk_that_could_refresh(app, migrated):
    """Test that a device-flow client with refresh_token or offline_access is refused with
    the reason, and nothing is registered (a kiosk session ends at kiosk_max_session)."""
    company = factories.company("C社")
    for extra in (["--grant-type", "refresh_token"], ["--scope", "offline_access"]):
        result = cli(migrated, "clients", "create", "--company", company, "--name", "K",
                     "--grant-type", DEVICE, "--grant-type", "client_credentials",
                     "--scope", "openid", "--scope", "touch_events", *extra, "--json")
        assert result.exit_code != 0
        assert "kiosk client (device_code grant) cannot have the" in result.output
    db.session.rollback()
    assert db.session.scalar(select(Client)) is None
