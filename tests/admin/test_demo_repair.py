"""A fresh demo run brings the demo companies and clients back to their demo state."""

from __future__ import annotations

from idp.accounts.models import Resident
from idp.cli import demo
from idp.clients import service as clients
from idp.clients.models import Client
from idp.clients.models import CompanyStatus
from idp.exchange import contracts
from idp.extensions import db


def seed():
    state = demo.seed_demo()
    db.session.commit()
    return state


def test_seeding_again_repairs_what_an_admin_did(app, tmp_path, monkeypatch):
    """Test that after A社 was revoked, B社 suspended, a contract ended and a scope removed,
    seeding again gives usable A社/B社 clients with their contracts and scopes."""
    monkeypatch.setattr(demo, "STATE_FILE", tmp_path / "demo.json")
    first = seed()
    clients.revoke_company(db.session.get(Client, first["client_id"]).company_id, actor="test")
    clients.suspend_company(first["b_company_id"], actor="test")
    contracts.end(first["exchange"]["b_contract"], actor="test")
    db.session.commit()

    again = seed()
    a = db.session.get(Client, again["client_id"])
    b = db.session.get(Client, again["b_client_id"])
    assert again["client_id"] != first["client_id"] and a.revoked_at is None
    assert a.company.name == "A社" and a.company.status == CompanyStatus.ACTIVE
    assert again["b_client_id"] == first["b_client_id"]
    assert b.company.status == CompanyStatus.ACTIVE
    for key in demo.EXCHANGED:
        assert f"contribute:{key}" in a.scopes and f"registered:{key}" in b.scopes
        assert contracts.in_force(a.company_id, key) is not None
        assert contracts.in_force(b.company_id, key) is not None
    # The revoked A社 stays as history; nothing else is duplicated.
    assert [c.name for c in db.session.scalars(db.select(Client).where(
        Client.name == "XXXサービス"))].count("XXXサービス") == 2
    assert seed() == again


def test_seeding_again_recreates_a_deleted_demo_resident(app, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "STATE_FILE", tmp_path / "demo.json")
    seed()
    resident = db.session.scalar(db.select(Resident).where(Resident.email == demo.RESIDENT_EMAIL))
    db.session.delete(resident)
    db.session.commit()
    seed()
    assert db.session.scalar(db.select(Resident).where(
        Resident.email == demo.RESIDENT_EMAIL)) is not None


def test_revoked_kiosk_company_gets_a_new_kiosk_and_sensor(app, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "STATE_FILE", tmp_path / "demo.json")
    first = seed()
    clients.revoke_company(db.session.get(Client, first["kiosk_client_id"]).company_id,
                           actor="test")
    db.session.commit()
    again = seed()
    assert again["kiosk_client_id"] != first["kiosk_client_id"]
    assert again["sensor_client_id"] != first["sensor_client_id"]
    kiosk = db.session.get(Client, again["kiosk_client_id"])
    sensor = db.session.get(Client, again["sensor_client_id"])
    assert kiosk.company_id == sensor.company_id
    assert kiosk.company.status == CompanyStatus.ACTIVE
