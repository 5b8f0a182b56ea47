"""`idp sensors create` and `idp sensors list`; `idp kiosks create` with coordinates."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.cli import main
from idp.clients.models import Client
from idp.extensions import db
from idp.kiosk.models import Kiosk
from idp.sensors.models import Sensor
from tests import factories


def cli(migrated, *args):
    db.session.commit()
    env = {"IDP_DATABASE_URL": migrated, "IDP_ENVIRONMENT": "test",
           "IDP_ISSUER": "http://localhost"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_sensors_create(app, migrated):
    """Test that `idp sensors create` makes a client_credentials client with sensor_counts."""
    company = factories.company("C社")
    result = cli(migrated, "sensors", "create", "--company", company, "--name", "人流センサー",
                 "--location", "北2条西4丁目", "--lat", "43.0632", "--lon", "141.3537",
                 "--area", "広場北側", "--retention-days", "90", "--contact", "c@example.jp",
                 "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["client_secret"] and data["location"] == "北2条西4丁目"
    assert (data["latitude"], data["longitude"]) == (43.0632, 141.3537)
    db.session.rollback()
    client = db.session.get(Client, data["client_id"])
    assert client.grant_types == ["client_credentials"]
    assert client.scopes == ["sensor_counts"]
    assert client.purpose and client.purpose_en  # the defaults
    sensor = db.session.get(Sensor, client.id)
    assert (sensor.area, sensor.retention_days, sensor.contact) == ("広場北側", 90,
                                                                    "c@example.jp")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.tag == "sensor:create"))
    assert event.data["location"] == "北2条西4丁目" and event.actor == "cli"


def test_sensors_create_refuses_half_coordinates(app, migrated):
    """Test that --lat without --lon fails with status 1 and the reason."""
    company = factories.company("C社")
    result = cli(migrated, "sensors", "create", "--company", company, "--name", "x",
                 "--location", "広場", "--lat", "43.06")
    assert result.exit_code == 1
    assert "both latitude and longitude" in result.output
    db.session.rollback()
    assert db.session.scalar(select(Sensor)) is None


def test_sensors_create_refuses_an_unknown_company(app, migrated):
    """Test that the company must exist."""
    result = cli(migrated, "sensors", "create", "--company", "co_NOPE", "--name", "x",
                 "--location", "広場")
    assert result.exit_code == 1


def test_sensors_list(app, migrated):
    """Test that `idp sensors list --json` lists every sensor with its company and place."""
    company = factories.company("C社")
    cli(migrated, "sensors", "create", "--company", company, "--name", "北", "--location", "北側")
    cli(migrated, "sensors", "create", "--company", company, "--name", "南", "--location", "南側")
    result = cli(migrated, "sensors", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["sensors"]
    assert [(e["name"], e["location"], e["company"]) for e in listed] == [
        ("北", "北側", "C社"), ("南", "南側", "C社")]
    text = cli(migrated, "sensors", "list")
    assert "北側" in text.output and "南側" in text.output


def test_kiosks_create_with_coordinates_and_contact(app, migrated):
    """Test that a kiosk can be placed on the transparency map and name a contact."""
    company = factories.company("C社")
    result = cli(migrated, "kiosks", "create", "--company", company, "--name", "サイネージ",
                 "--location", "北2条西4丁目", "--lat", "43.0632", "--lon", "141.3537",
                 "--contact", "signage@example.jp", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["transparency"] == f"/transparency#kiosk-{data['client_id']}"
    db.session.rollback()
    kiosk = db.session.get(Kiosk, data["client_id"])
    assert (kiosk.latitude, kiosk.longitude, kiosk.contact) == (43.0632, 141.3537,
                                                                 "signage@example.jp")
