"""Data links: consent per data link (seed 004), the draft terms' item 5.

A data link is one source company's records of one category, released to one
recipient service (client), for the purpose of the recipient's data-use
contract, until the expiry the resident chose (``EXPIRY_CHOICES``; None: until
withdrawn). There is one row per (resident, recipient, source, category):

- ``sources``        who holds live values of a category about a resident: the
                     companies whose records have not expired and whose
                     collection the resident has not stopped (disputed records
                     are left out: the resident said they are wrong);
- ``grant``          the resident consented (consent screen, device flow): a
                     link per source of every ``registered:<key>`` ticked,
                     created or renewed with the chosen expiry; the links of a
                     category unticked end (``declined``);
- ``in_force``       the links that release now (not withdrawn, not expired);
- ``withdraw``       the resident ends one link (``/account/consents``); when
                     no link of the category remains in force for that client,
                     ``registered:<key>`` leaves the consent, so every token of
                     the client stops covering it at once (the live-token rule:
                     tokens follow the consent in force at the moment of use);
- ``new_sources``    the categories already consented whose sources include
                     one without a link (a company that contributed since, or
                     a link that expired): the consent screen asks again
                     (``new_sources``, ``idp.interaction.policy``). A link the
                     resident withdrew is their decision and is not asked again.

Every change is audited (DATA_LINK_GRANT, DATA_LINK_WITHDRAW); a link that ends
is pushed to the recipient as a security event (``urn:machi-id:secevent:
data-link-ended``, docs/security-events.md). A link that runs out at its expiry
stops releasing at that moment; ``idp worker`` then tells the recipient
(``idp.exchange.lifecycle``), as it does for links a contract's end ends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from idp.access import security_events
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.clients.models import Company
from idp.consent import service as consent_service
from idp.consent.models import Consent
from idp.db import utcnow
from idp.exchange import contracts
from idp.exchange.models import CollectionStop
from idp.exchange.models import DataLink
from idp.exchange.models import RegisteredRecord
from idp.exchange.scopes import RECEIVE
from idp.extensions import db

# The choices of the consent screen's ``link_expiry`` select: days, None = until withdrawn.
EXPIRY_CHOICES: dict[str, int | None] = {"90d": 90, "365d": 365, "withdrawn": None}
DEFAULT_EXPIRY = "365d"


class LinkError(ValueError):
    pass


@dataclass(frozen=True)
class Source:
    """A company holding a live value of a category about a resident: its latest one."""

    company: Company
    value: Any
    collected_at: dt.datetime
    received_at: dt.datetime


def category_keys(scopes) -> list[str]:
    """The categories of the ``registered:<key>`` scopes, in their order."""
    return [s[len(RECEIVE):] for s in scopes if isinstance(s, str) and s.startswith(RECEIVE)]


def expiry_of(choice: str | None, now: dt.datetime) -> dt.datetime | None:
    """The expiry for a ``link_expiry`` choice; ``LinkError`` for an unknown one."""
    choice = choice or DEFAULT_EXPIRY
    if choice not in EXPIRY_CHOICES:
        raise LinkError(f"link_expiry must be one of {', '.join(EXPIRY_CHOICES)}")
    days = EXPIRY_CHOICES[choice]
    return None if days is None else now + dt.timedelta(days=days)


def _stopped(resident_id: str) -> set[str]:
    return set(db.session.scalars(select(CollectionStop.company_id)
                                  .where(CollectionStop.resident_id == resident_id)))


def sources(resident_id: str, category: str, now: dt.datetime | None = None,
            companies: set[str] | None = None) -> list[Source]:
    """The companies holding a live value of ``category`` about the resident, each with
    its latest value (by collection time), newest first; only ``companies`` if given."""
    now = now or utcnow()
    query = (select(RegisteredRecord)
             .where(RegisteredRecord.resident_id == resident_id,
                    RegisteredRecord.category == category,
                    RegisteredRecord.expires_at > now,
                    RegisteredRecord.disputed_at.is_(None))
             .order_by(RegisteredRecord.collected_at.desc(), RegisteredRecord.received_at.desc(),
                       RegisteredRecord.id.desc()))
    if companies is not None:
        if not companies:
            return []
        query = query.where(RegisteredRecord.company_id.in_(companies))
    stopped = _stopped(resident_id)
    latest: dict[str, Source] = {}
    for row in db.session.scalars(query):
        if row.company_id in stopped or row.company_id in latest:
            continue
        latest[row.company_id] = Source(row.company, row.value, row.collected_at, row.received_at)
    return list(latest.values())


def for_client(resident_id: str, client_id: str, category: str | None = None) -> list[DataLink]:
    """Every link of the resident to this client (of one category if given)."""
    query = select(DataLink).where(DataLink.resident_id == resident_id,
                                   DataLink.client_id == client_id)
    if category is not None:
        query = query.where(DataLink.category == category)
    return list(db.session.scalars(query.order_by(DataLink.category, DataLink.id)))


def for_resident(resident_id: str) -> list[DataLink]:
    """Every link of the resident, newest first (ended ones too)."""
    return list(db.session.scalars(
        select(DataLink).where(DataLink.resident_id == resident_id)
        .order_by(DataLink.granted_at.desc(), DataLink.id.desc())))


def in_force(resident_id: str, client_id: str, category: str,
             now: dt.datetime | None = None) -> list[DataLink]:
    now = now or utcnow()
    return [link for link in for_client(resident_id, client_id, category) if link.in_force(now)]


def grant(resident_id: str, client: Client, requested: list[str], consented: list[str],
          expiry: str | None = None) -> list[DataLink]:
    """The resident's decision on item 5: a link, in force until the chosen expiry,
    from every source of each consented ``registered:<key>``; the links of a category
    asked for and not consented end. Returns the links created or renewed."""
    now = utcnow()
    expires_at = expiry_of(expiry, now)
    granted_keys = category_keys(consented)
    declined = [k for k in category_keys(requested) if k not in granted_keys]
    made: list[DataLink] = []
    for key in granted_keys:
        contract = contracts.in_force(client.company_id, key)
        purpose = contract.purpose if contract is not None else ""
        existing = {link.source_company_id: link for link in for_client(resident_id, client.id,
                                                                           key)}
        for source in sources(resident_id, key, now):
            link = existing.get(source.company.id)
            if link is None:
                link = DataLink(resident_id=resident_id, client_id=client.id,
                                source_company_id=source.company.id, category=key)
                db.session.add(link)
            link.purpose = purpose
            link.granted_at = now
            link.expires_at = expires_at
            link.withdrawn_at = None
            link.end_reason = None
            made.append(link)
    db.session.flush()
    for link in made:
        record(AuditTag.DATA_LINK_GRANT, resident_id=resident_id, client_id=client.id,
               company_id=client.company_id, link=link.id, category=link.category,
               source_company_id=link.source_company_id,
               expires_at=link.expires_at.isoformat() if link.expires_at else None)
    for key in declined:
        for link in in_force(resident_id, client.id, key, now):
            end_link(link, "declined", now)
    return made


# Why a link ended → the ``reason`` of the recipient's data-link-ended event.
# A link the recipient's data-use contract took with it (idp.exchange.lifecycle).
CONTRACT_REASONS = ("contract_ended", "contract_expired")
EVENT_REASONS = {"withdrawn": "data_link_withdrawn", "declined": "data_link_declined",
                 "consent_withdrawn": "consent_withdrawn"}


def end_link(link: DataLink, reason: str, now: dt.datetime, *, actor: str | None = None,
             **about: Any) -> None:
    """End a link, audited (``about``: more for the audit record, e.g. the contract);
    the recipient service is told by a security event
    (``urn:machi-id:secevent:data-link-ended``) naming the category and the source
    company by name, as the claim did."""
    link.withdrawn_at = now
    link.end_reason = reason
    client = db.session.get(Client, link.client_id)
    record(AuditTag.DATA_LINK_WITHDRAW, actor=actor, resident_id=link.resident_id,
           client_id=link.client_id, company_id=client.company_id if client else None,
           link=link.id, category=link.category, source_company_id=link.source_company_id,
           reason=reason, **about)
    security_events.queue(link.client_id, link.resident_id, security_events.DATA_LINK_ENDED,
                          {"category": link.category, "source": link.source_company.name},
                          reason=EVENT_REASONS.get(reason, reason))


def end_all(resident_id: str, client_id: str, reason: str) -> int:
    """End every link in force of the resident to the client (the whole consent was
    withdrawn); how many ended."""
    now = utcnow()
    ended = [link for link in for_client(resident_id, client_id) if link.in_force(now)]
    for link in ended:
        end_link(link, reason, now)
    return len(ended)


@dataclass(frozen=True)
class Withdrawn:
    link: DataLink
    # The consent no longer covers the category: no link of it remained in force.
    narrowed: bool


def withdraw(resident_id: str, link_id: Any) -> Withdrawn:
    """The resident ends one link. When no link of its category remains in force for
    that client, ``registered:<key>`` leaves the consent's items."""
    link = db.session.get(DataLink, link_id) if isinstance(link_id, int) else None
    now = utcnow()
    if link is None or link.resident_id != resident_id or not link.in_force(now):
        raise LinkError("no data link in force with this id")
    end_link(link, "withdrawn", now)
    narrowed = False
    if not in_force(resident_id, link.client_id, link.category, now):
        narrowed = _narrow(resident_id, link.client_id, f"{RECEIVE}{link.category}")
    db.session.flush()
    return Withdrawn(link, narrowed)


def _narrow(resident_id: str, client_id: str, scope: str) -> bool:
    consent: Consent | None = consent_service.find(resident_id, client_id)
    if consent is None or scope not in consent.scopes:
        return False
    # A new list, so the JSON column is seen as changed.
    consent.scopes = [s for s in consent.scopes if s != scope]
    client = db.session.get(Client, client_id)
    record(AuditTag.CONSENT_CHANGE, resident_id=resident_id, client_id=client_id,
           company_id=client.company_id if client else None, scopes=list(consent.scopes),
           removed=[scope], reason="data_link_withdrawn")
    return True


def new_sources(resident_id: str, client_id: str, requested: list[str]) -> list[str]:
    """The requested categories the consent in force already covers that have a source
    with no link, or whose link expired (not one the resident withdrew)."""
    keys = category_keys(requested)
    if not keys:
        return []
    consented = consent_service.scopes_in_force(resident_id, client_id)
    now = utcnow()
    found = []
    for key in keys:
        if f"{RECEIVE}{key}" not in consented:
            continue
        links = {link.source_company_id: link for link in for_client(resident_id, client_id, key)}
        for source in sources(resident_id, key, now):
            link = links.get(source.company.id)
            if link is None or (link.withdrawn_at is None and not link.in_force(now)):
                found.append(key)
                break
    return found


def display(value: Any) -> str:
    """A contributed value as the resident reads it on the consent screen."""
    if isinstance(value, dict):
        return "、".join(f"{key}: {display(item)}" for key, item in value.items())
    if isinstance(value, list):
        return "、".join(display(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def status(link: DataLink, now: dt.datetime | None = None) -> str:
    """``in_force``, ``expired`` or ``withdrawn`` (the page of /account/consents)."""
    now = now or utcnow()
    if link.withdrawn_at is not None:
        return "withdrawn"
    return "in_force" if link.in_force(now) else "expired"

