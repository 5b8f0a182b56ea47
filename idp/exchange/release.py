"""Release of registered data: the ``registered_data`` claim (the draft terms' item 5).

A recipient service receives a category, at the moment of use (UserInfo, or the
ID token when it asked through the ``claims`` parameter), only when all of these
hold then:

1. the token's scope, within the consent in force, covers ``registered:<key>``
   (the caller passes the covered scopes: ``idp.consent.service.covered``);
2. a data-use contract of the recipient's company in force names the category
   (``idp.exchange.contracts.in_force``);
3. at least one data link of the resident to this client for the category is in
   force (``idp.exchange.links``);
4. a linked source company holds a live value: not expired, not disputed, and
   its collection not stopped by the resident (``links.sources``).

The claim names each category by its key::

    "registered_data": {"language": {"value": "ja", "sources": ["A社"]}}

``value`` is the latest value (by collection time) among the linked sources;
``sources`` names the linked companies that hold one, by name only. Never a
record id, a contributor's client id, nor any company's ``sub`` or identifier:
companies never learn each other's identifiers (seed 004).

Each release is audited RECORD_RELEASE with ``categories`` and ``links`` (the
link ids that fed it), once per token and set (``idp.oauth.oidc.release``): the
usage reports count releases per category and per link from these records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.exchange import links

CLAIM = "registered_data"


@dataclass
class Released:
    """The ``registered_data`` claim value and the link ids it came through."""

    claim: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: list[int] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return list(self.claim)

    def claim_names(self) -> list[str]:
        """Names for the claims-release audit record and its dedupe (``registered_data.<key>``)."""
        return [f"{CLAIM}.{key}" for key in self.claim]


def registered_data(resident_id: str, client, scopes: list[str],
                    now: dt.datetime | None = None) -> Released:
    """What may be released now of the ``registered:<key>`` among ``scopes`` (the
    token's scopes the consent in force covers) to ``client``."""
    now = now or utcnow()
    released = Released()
    for key in links.category_keys(scopes):
        if categories.get(key) is None or contracts.in_force(client.company_id, key) is None:
            continue
        live = {link.source_company_id: link
                for link in links.in_force(resident_id, client.id, key, now)}
        if not live:
            continue
        found = links.sources(resident_id, key, now, companies=set(live))
        if not found:
            continue
        released.claim[key] = {"value": found[0].value,
                               "sources": [source.company.name for source in found]}
        released.links += [live[source.company.id].id for source in found]
    return released


def audit(released: Released, resident_id: str, client, channel: str) -> None:
    record(AuditTag.RECORD_RELEASE, resident_id=resident_id, client_id=client.id,
           company_id=client.company_id, categories=released.categories,
           links=released.links, channel=channel)
