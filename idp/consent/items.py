"""The consent screen's items: what each scope releases, and what the resident will send.

The items and their wording (the consortium's draft terms) are the scope
registry's (``idp.scopes``); this module shows a resident's own values next
to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import scopes
from idp.accounts.service import full_name
from idp.proofing import service as proofing

# Scopes a resident cannot untick: without `openid` there is no sign-in.
REQUIRED_SCOPES = scopes.required()
OPT_IN_SCOPES = scopes.opt_in()


@dataclass(frozen=True)
class ConsentItem:
    scope: str
    label: object
    detail: object


def part_of(item: str, part: str) -> str:
    """A part of a consent item, recorded with it: ``verified_claims.birthdate`` is the
    verified birth date asked for under "Verified identity information". A part is
    given or declined with its item's box and never shown on its own; a request for a
    part not decided on before is asked again (``consent.service.reasons_for``)."""
    return f"{item}.{part}"


def item_of(entry: str) -> str:
    """The item a recorded entry belongs to (itself for an item)."""
    return entry.partition(".")[0]


GENDER_LABELS = {"female": _l("Female"), "male": _l("Male"), "other": _l("Other")}


def items_for(requested: list[str] | set[str]) -> list[ConsentItem]:
    """The consent items for the requested scopes, in the order of the draft terms
    (the registry's, ``idp.scopes.consent_items``)."""
    return [ConsentItem(s.name, s.label, s.detail) for s in scopes.consent_items(requested)]


def display_values(resident: Any, scope: str) -> str | None:
    """What the consent screen shows the resident will be sent for a scope."""
    if scope == "name":
        name = full_name(resident.family_name, resident.given_name)
        kana = full_name(resident.family_name_kana, resident.given_name_kana)
        if name and kana:
            return f"{name}（{kana}）"
        return name or kana
    if scope == "birth_year":
        return str(resident.birth_year) if resident.birth_year else None
    if scope == "gender":
        return str(GENDER_LABELS[resident.gender]) if resident.gender in GENDER_LABELS else None
    if scope == "email":
        # Item 3 of the draft terms: the address and its verified status, both sent
        # (the email and email_verified claims).
        if resident.email_verified:
            return _("%(email)s (verified)", email=resident.email)
        return _("%(email)s (not verified)", email=resident.email)
    if scope == "postal_code":
        parts = [p for p in (resident.postal_code and f"〒{resident.postal_code}",
                             resident.locality) if p]
        return " ".join(parts) or None
    if scope == "verified_claims":
        return _verified_summary(resident)
    return None


def _verified_summary(resident: Any) -> str | None:
    """The verified values and how they were checked, e.g.
    "札幌 花子, 1990 (My Number card, 2026-11-20)"."""
    parts = []
    for item in proofing.verified(resident):
        values = []
        for claim in item.claims:
            if claim == "name":
                values.append(full_name(resident.family_name, resident.given_name))
            elif claim == "birthdate":
                values.append(str(resident.birth_year))
            else:
                values.append(display_values(resident, "postal_code"))
        parts.append(_("%(values)s (%(document)s, %(date)s)", values=", ".join(values),
                       document=proofing.EVIDENCE_LABELS[item.evidence],
                       date=item.verified_on.isoformat()))
    return "; ".join(parts) or None
