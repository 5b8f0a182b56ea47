"""Data-exchange fixtures for the data-link tests: categories, contracts, a source
company's records (written directly, as its contribution would store them) and a
recipient service registered for ``registered:<category>``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from werkzeug.datastructures import MultiDict

from idp import locales
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange.models import DataContract
from idp.exchange.models import RegisteredRecord
from idp.extensions import db
from tests import factories
from tests.helpers.oauth import redeem

ONE_YEAR = dt.timedelta(days=365)


@dataclass
class Exchange:
    source_company: str       # A社: contributes language
    recipient_company: str    # B社: receives language
    source_contract: str
    recipient_contract: str
    rp: factories.RP          # B社's service, registered for registered:language


@dataclass
class Source:
    company_id: str
    contract_id: str


def setup_source(name: str = "A社", keys: tuple[str, ...] = ("language",)) -> Source:
    """A company under a contract to contribute ``keys`` (the default categories exist)."""
    categories.ensure_defaults()
    company_id = factories.company(name)
    contract = contracts.create(company_id, list(keys), "言語設定の提供",
                                valid_until=(utcnow() + ONE_YEAR).date())
    db.session.commit()
    return Source(company_id, contract.id)


def setup(keys: tuple[str, ...] = ("language",), *, source: str = "A社",
          recipient: str = "B社", **rp_options) -> Exchange:
    categories.ensure_defaults()
    source_id = factories.company(source)
    recipient_id = factories.company(recipient)
    until = (utcnow() + ONE_YEAR).date()
    a = contracts.create(source_id, list(keys), "言語設定の提供", valid_until=until)
    b = contracts.create(recipient_id, list(keys), "多言語での観光案内", valid_until=until)
    db.session.commit()
    rp_options.setdefault("scopes", [*factories.ALL_SCOPES, *(f"registered:{k}" for k in keys)])
    rp = factories.rp(recipient_id, **rp_options)
    return Exchange(source_id, recipient_id, a.id, b.id, rp)


def contribute(resident_id: str, company_id: str, contract_id: str, value: Any, *,
               category: str = "language", record_id: str = "r-1",
               collected_at: dt.datetime | None = None,
               expires_in: dt.timedelta = ONE_YEAR) -> RegisteredRecord:
    now = utcnow()
    row = RegisteredRecord(resident_id=resident_id, category=category, company_id=company_id,
                           client_id="mc_contributor_client", contract_id=contract_id,
                           record_id=record_id, value=value,
                           collected_at=collected_at or now, expires_at=now + expires_in)
    db.session.add(row)
    db.session.commit()
    return row


def runs_out_tomorrow(contract_id: str, successor_from: int | None = None) -> dt.datetime:
    """Make tomorrow (Japan's day: a contract's dates are Japan's) the contract's last day,
    and, with ``successor_from``, add a contract for language of the same company that
    starts that many days after it. Commits; returns 23:50 in Japan on the last day."""
    contract = db.session.get(DataContract, contract_id)
    contract.valid_until = last_day = contracts.today() + dt.timedelta(days=1)
    if successor_from is not None:
        contracts.create(contract.company_id, ["language"], "次年度の契約",
                         valid_from=last_day + dt.timedelta(days=successor_from),
                         valid_until=last_day + ONE_YEAR)
    db.session.commit()
    return dt.datetime.combine(last_day, dt.time(23, 50), tzinfo=locales.TIMEZONE)


# ---- the recipient's code flow through the consent screen ---------------------------

SCOPE = "openid name registered:language offline_access"


def consent_page(client, rp, scope=SCOPE, **params) -> tuple[str, str]:
    """Sign in and reach the consent screen: (its path, the PKCE verifier)."""
    browser = factories.Browser(client)
    verifier, challenge = factories.pkce_pair()
    response = browser.authorize(rp, scope=scope, code_challenge=challenge,
                                 code_challenge_method="S256", **params)
    location = response.headers["Location"]
    if "/login" in location:
        uid = factories.query(location)["interaction"]
        location = client.get(browser.login(interaction=uid).headers["Location"]).headers[
            "Location"]
    assert "/consent/" in location, location
    return urlsplit(location).path, verifier


def consent(client, rp, scope=SCOPE, expiry="365d", scopes=None, **params) -> dict:
    """The code flow through the consent screen; the token response."""
    path, verifier = consent_page(client, rp, scope, **params)
    return decide(client, rp, path, verifier, scopes or scope.split(), expiry)


def decide(client, rp, path, verifier, scopes, expiry):
    page = client.get(path)
    form = MultiDict([("csrf_token", factories.csrf(page.text)), ("decision", "allow"),
                      *(("scope", s) for s in scopes)])
    if expiry is not None:
        form.add("link_expiry", expiry)
    response = client.post(path, data=form)
    code = factories.query(response.headers["Location"])["code"]
    answer = redeem(client, rp, code, verifier)
    assert answer.status_code == 200, answer.text
    return answer.json


def tokens(client, rp, scope=SCOPE, **params) -> dict:
    verifier, challenge = factories.pkce_pair()
    result = factories.Browser(client).code_flow(rp, scope=scope, code_challenge=challenge,
                                                 code_challenge_method="S256", **params)
    answer = redeem(client, rp, result["code"], verifier)
    assert answer.status_code == 200, answer.text
    return answer.json
