"""The demo shows the data exchange: A社 may contribute, B社 may receive, under contracts."""

from __future__ import annotations

from idp import scopes
from idp.cli import demo
from idp.clients.models import Client
from idp.exchange import contracts
from idp.extensions import db


def test_demo_seeds_contracts_and_the_exchange_scopes(app, tmp_path, monkeypatch):
    """Test that the demo's A社 service may contribute and B社's may receive the demo's
    categories under contracts in force, and that seeding again changes nothing."""
    monkeypatch.setattr(demo, "STATE_FILE", tmp_path / "demo.json")
    state = demo.seed_demo()
    db.session.commit()
    a = db.session.get(Client, state["client_id"])
    b = db.session.get(Client, state["b_client_id"])
    for key in demo.EXCHANGED:
        assert f"contribute:{key}" in a.scopes and f"registered:{key}" in b.scopes
        assert contracts.in_force(a.company_id, key) is not None
        assert contracts.in_force(b.company_id, key) is not None
        assert scopes.refusal(b.company_id, f"registered:{key}") is None
    assert "client_credentials" in a.grant_types
    assert demo.seed_demo()["exchange"] == state["exchange"]
    db.session.commit()
    assert len(contracts.for_company(a.company_id)) == 1
