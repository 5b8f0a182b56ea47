"""Builders for the data exchange's supply side: a contributing company with a contract,
its client_credentials client, residents it has served, and tokens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from idp.access import subjects
from idp.clients import service as clients
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.extensions import db
from tests import factories

# In force since before the fixed days some tests freeze the clock at (2026-12-03), and
# for a year from the real today: whatever the real day or hour (contract days are
# Japan's, idp.exchange.contracts.today).
IN_FORCE_SINCE = dt.date(2026, 1, 1)


@dataclass
class Contributor:
    company_id: str
    client_id: str
    client_secret: str
    contract_id: str


def contributor(name: str = "A社", keys: tuple[str, ...] = ("language",),
                scopes: tuple[str, ...] | None = None) -> Contributor:
    """A company with a data-use contract naming ``keys`` and a backend client
    registered for ``contribute:<key>`` of each."""
    categories.ensure_defaults()
    company_id = factories.company(name)
    contract = contracts.create(company_id, list(keys), "サービス改善のための属性把握",
                                valid_from=IN_FORCE_SINCE,
                                valid_until=utcnow().date() + dt.timedelta(days=365))
    client, secret = clients.register_client(
        company_id, f"{name}バックエンド", grant_types=["client_credentials"],
        scopes=list(scopes or [f"contribute:{k}" for k in keys]), purpose="登録データの提供")
    db.session.commit()
    return Contributor(company_id, client.id, secret, contract.id)


def served(company_id: str, email: str = "hanako@example.jp") -> tuple[str, str]:
    """A resident the company has served: (resident id, the company's sub for them)."""
    resident = factories.resident(email)
    sub = subjects.subject_for(resident.id, company_id)
    db.session.commit()
    return resident.id, sub


def token(client, who: Contributor, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    answer = client.post("/token", data=data, auth=(who.client_id, who.client_secret))
    assert answer.status_code == 200, answer.text
    return answer.json["access_token"]


def record(sub: str, value="ja", *, category="language", record_id="r-1",
           collected_at: str | None = None) -> dict:
    return {"sub": sub, "category": category, "value": value, "record_id": record_id,
            "collected_at": collected_at or (utcnow() - dt.timedelta(hours=1)).isoformat()}


def post(client, access_token: str, records: list[dict] | dict):
    body = {"records": records} if isinstance(records, list) else records
    return client.post("/api/registered-data", json=body,
                       headers={"Authorization": f"Bearer {access_token}"})
