"""What ends data links besides the resident: a contract that ends, and a link's own expiry.

A recipient is told whenever a link of its ends (``urn:machi-id:secevent:
data-link-ended``, docs/security-events.md), whatever ended it:

- ``end_contract``        the consortium ends a company's data-use contract: the
                          contract ends (``contracts.end``), and every link in force
                          to the company's services for a category no other contract
                          of the company in force still names ends with it (reason
                          ``contract_ended``). Release already stops at once (the
                          release checks the recipient's contract at each use); this
                          makes the links say so and tells the recipient;
- ``end_links_of_lapsed_contracts``
                          a contract ran out on its ``valid_until`` date without anyone
                          ending it: release stopped the next day (the same check);
                          ``idp worker`` ends the links it alone allowed (reason
                          ``contract_expired``) and tells the recipient, once;
- ``end_expired_links``   a link reached the expiry the resident chose: release
                          stopped at that moment; ``idp worker`` marks it
                          (``end_reason = "expired"``, the link stays "expired" for the
                          resident) and tells the recipient, once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from idp.access import epoch
from idp.access import security_events
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange.links import end_link
from idp.exchange.models import DataContract
from idp.exchange.models import DataLink
from idp.extensions import db

EXPIRED = "expired"
CONTRACT_EXPIRED = "contract_expired"


def end_contract(contract_id: str, reason: str = "ended by the consortium",
                 actor: str | None = None) -> tuple[DataContract, int]:
    """End the contract and the links it alone allowed; (the contract, links ended)."""
    contract = contracts.end(contract_id, reason, actor=actor)
    epoch.bump("contract_ended")  # nodes keep clients in process (idp.access.epoch)
    ending = _unnamed(contract.company_id, contract.categories, contracts.today())
    ended = _end_links(contract.company_id, ending, "contract_ended", utcnow())
    db.session.flush()
    return contract, ended


def end_links_of_lapsed_contracts(now: dt.datetime | None = None) -> int:
    """End the links in force that only a contract past its ``valid_until`` allowed
    (``contract_expired``, audited with the contract, the recipient told); how many.

    Such a contract is not ended (``contracts.require`` keeps saying it "has expired");
    every run looks at all of them again, which ends nothing twice (an ended link is
    no longer in force) and catches up after a worker that was down. Contracts are
    few (one or two per member company), the links are looked up by index."""
    now = now or utcnow()
    today = now.date()
    lapsed = list(db.session.scalars(select(DataContract).where(
        DataContract.ended_at.is_(None), DataContract.valid_until < today)
        .order_by(DataContract.valid_until, DataContract.id)))
    ended = 0
    for contract in lapsed:
        ending = _unnamed(contract.company_id, contract.categories, today)
        ended += _end_links(contract.company_id, ending, CONTRACT_EXPIRED, now,
                            actor="worker", contract_id=contract.id)
    db.session.flush()
    return ended


def _unnamed(company_id: str, keys: list[str], today: dt.date) -> list[str]:
    """The categories among ``keys`` that no contract of the company in force names."""
    return [key for key in keys if contracts.in_force(company_id, key, today) is None]


def _end_links(company_id: str, keys: list[str], reason: str, now: dt.datetime,
               **about) -> int:
    """End every link in force of the company's services for these categories."""
    if not keys:
        return 0
    client_ids = select(Client.id).where(Client.company_id == company_id)
    links = list(db.session.scalars(select(DataLink).where(
        DataLink.client_id.in_(client_ids), DataLink.category.in_(keys),
        DataLink.withdrawn_at.is_(None)).order_by(DataLink.id)))
    ended = 0
    for link in links:
        if link.in_force(now):
            end_link(link, reason, now, **about)
            ended += 1
    return ended


def end_expired_links(now: dt.datetime | None = None, limit: int = 500) -> int:
    """Mark links past their expiry and tell each recipient once; how many."""
    now = now or utcnow()
    links = list(db.session.scalars(
        select(DataLink).where(DataLink.withdrawn_at.is_(None),
                               DataLink.expires_at.is_not(None),
                               DataLink.expires_at <= now,
                               DataLink.end_reason.is_(None))
        .order_by(DataLink.expires_at).limit(limit)))
    for link in links:
        link.end_reason = EXPIRED
        client = db.session.get(Client, link.client_id)
        record(AuditTag.DATA_LINK_WITHDRAW, actor="worker", resident_id=link.resident_id,
               client_id=link.client_id, company_id=client.company_id if client else None,
               link=link.id, category=link.category,
               source_company_id=link.source_company_id, reason=EXPIRED)
        security_events.queue(link.client_id, link.resident_id, security_events.DATA_LINK_ENDED,
                              {"category": link.category, "source": link.source_company.name},
                              reason="data_link_expired")
    db.session.flush()
    return len(links)
