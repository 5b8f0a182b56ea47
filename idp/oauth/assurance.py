"""OpenID Connect for Identity Assurance 1.0: ``verified_claims`` on request and consent.

A client asks through the ``claims`` request parameter (OIDC Core §5.5)::

    claims={"userinfo": {"verified_claims": {"verification": {"trust_framework": null},
                                             "claims": {"given_name": null,
                                                        "birthdate": null}}}}

and, in the ``id_token`` member, for the ID token. The release needs, in order:

1. the client is allowed verified claims (``Client.verified_claims_allowed``,
   set by the consortium); otherwise the request is ignored, as OIDC lets an
   OP ignore claims it will not give;
2. the resident has claims a counter check still proves (``idp.proofing``);
   otherwise there is nothing to consent to, and nothing is sent;
3. the resident ticked "Verified identity information" on the consent screen
   (consent item ``verified_claims``) for these claim names: the consent records
   each name asked for as a part of the item (``verified_claims.birthdate``), so
   a later request for another name asks again (``consent_required`` under
   ``prompt=none``); the code and tokens then carry the request, cut down to the
   consented names (``AuthorizationCode.claims``, ``Token.claims``);
4. at release time the consent in force still has the item and the names.

Only requested claims are sent, and only verified ones; ``verification``
always has ``trust_framework`` and, when asked for, ``time``,
``verification_process`` and ``evidence``. ``verification_process`` names the
proofing record as the receiving company sees it (``subjects.per_company_id``):
stable for that company, unrelated to what any other company receives. Other
members of the ``claims`` parameter are ignored (claims come from scopes here),
but ``registered_data`` in the ``id_token`` member: the ID token then carries the
registered data the ``registered:<category>`` scopes release (``idp.oauth.claims``).
"""

from __future__ import annotations

import json
from typing import Any

from idp import config
from idp.access.subjects import per_company_id
from idp.accounts.service import full_name
from idp.consent.items import part_of
from idp.proofing import service as proofing

VERIFIED_CLAIMS = "verified_claims"
REGISTERED_DATA = "registered_data"
TARGETS = ("id_token", "userinfo")
MAX_PARAMETER = 4096
# claim name in verified_claims.claims → the proofing claim that covers it
CLAIM_SOURCES = {
    "given_name": "name",
    "family_name": "name",
    "name": "name",
    "birthdate": "birthdate",
    "address": "address",
}
EVIDENCE_TYPES = ["document"]
CHECK_METHODS = ["vpip"]  # physical document, checked in person at a counter


class ClaimsRequestError(ValueError):
    """The ``claims`` parameter is not valid JSON of the expected shape."""


def parse(raw: Any) -> dict[str, list[dict]] | None:
    """The ``verified_claims`` requests of a ``claims`` parameter, by target.

    None when nothing asks for verified claims. Raises ClaimsRequestError for
    a parameter that is not a JSON object of objects, or a verified_claims
    request without a non-empty ``claims`` object (IDA §5.1).
    """
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_PARAMETER:
        raise ClaimsRequestError("'claims' must be a JSON object of at most 4096 characters")
    try:
        value = json.loads(raw)
    except ValueError:
        raise ClaimsRequestError("'claims' is not valid JSON") from None
    if not isinstance(value, dict):
        raise ClaimsRequestError("'claims' must be a JSON object")
    found: dict[str, list[dict]] = {}
    for target in TARGETS:
        member = value.get(target)
        if member is None:
            continue
        if not isinstance(member, dict):
            raise ClaimsRequestError(f"'claims.{target}' must be an object")
        # registered_data (idp.exchange.release): null or an individual claim request.
        if not isinstance(member.get(REGISTERED_DATA, {}), dict | None):
            raise ClaimsRequestError(f"'claims.{target}.registered_data' must be null "
                                     "or an object")
        requested = member.get(VERIFIED_CLAIMS)
        if requested is None:
            continue
        items = requested if isinstance(requested, list) else [requested]
        if not items:
            raise ClaimsRequestError("'verified_claims' must not be empty")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("claims"), dict) \
                    or not item["claims"]:
                raise ClaimsRequestError("each 'verified_claims' request needs a non-empty "
                                         "'claims' object")
            if not isinstance(item.get("verification", {}), dict):
                raise ClaimsRequestError("'verification' must be an object")
        found[target] = items
    return found or None


def asks(request_data: dict, client, resident) -> bool:
    """Whether this authorization request makes "verified identity information" a
    consent item (rules 1 and 2 above). Assumes a parameter already validated."""
    if not client.verified_claims_allowed or resident is None:
        return False
    try:
        wanted = parse(request_data.get("claims"))
    except ClaimsRequestError:
        return False
    return bool(wanted) and bool(proofing.verified(resident))


def claim_parts(wanted: dict[str, list[dict]]) -> list[str]:
    """The consent parts for the claim names a request asks for (those we can verify),
    whatever the target: ``verified_claims.given_name`` …"""
    return sorted({part_of(VERIFIED_CLAIMS, name) for items in wanted.values()
                   for item in items for name in item["claims"] if name in CLAIM_SOURCES})


def consent_items(scopes: list[str], request_data: dict, client, resident) -> list[str]:
    """What the consent screen asks about: the scopes, plus ``verified_claims`` with the
    claim names asked for (recorded with the item, not shown as boxes of their own)."""
    items = list(scopes)
    if "openid" in items and asks(request_data, client, resident):
        items.append(VERIFIED_CLAIMS)
        items += claim_parts(parse(request_data.get("claims")))
    return items


def within_consent(wanted: dict[str, list[dict]],
                   consented: set[str]) -> dict[str, list[dict]] | None:
    """The requests cut down to the claim names the consent covers; None if nothing is left."""
    if VERIFIED_CLAIMS not in consented:
        return None
    kept: dict[str, list[dict]] = {}
    for target, items in wanted.items():
        for item in items:
            claims = {name: value for name, value in item["claims"].items()
                      if part_of(VERIFIED_CLAIMS, name) in consented}
            if claims:
                kept.setdefault(target, []).append({**item, "claims": claims})
    return kept or None


def granted(request_data: dict, client, consented: set[str]) -> dict | None:
    """The part of the request the code may carry: only the claim names consented to."""
    if not client.verified_claims_allowed:
        return None
    try:
        wanted = parse(request_data.get("claims"))
    except ClaimsRequestError:
        return None
    return within_consent(wanted, consented) if wanted else None


def _framework_ok(verification: dict, framework: str) -> bool:
    constraint = verification.get("trust_framework")
    if isinstance(constraint, dict):
        if "value" in constraint and constraint["value"] != framework:
            return False
        if isinstance(constraint.get("values"), list) and framework not in constraint["values"]:
            return False
    return True


def _claims(resident, covered: tuple[str, ...], wanted: dict) -> dict[str, Any]:
    values = proofing.claim_values(resident)
    out: dict[str, Any] = {}
    for name in wanted:
        source = CLAIM_SOURCES.get(name)
        if source is None or source not in covered:
            continue
        value = values[source]
        if name in ("given_name", "family_name"):
            out[name] = value[name]
        elif name == "name":
            out[name] = full_name(value["family_name"], value["given_name"])
        else:
            out[name] = value
    return out


def _verification(item: proofing.Verified, wanted: dict, company_id: str) -> dict[str, Any]:
    settings = config.settings()
    verification: dict[str, Any] = {"trust_framework": settings.proofing_trust_framework}
    day = item.verified_on.isoformat()
    if "time" in wanted:
        verification["time"] = day
    if "verification_process" in wanted:
        verification["verification_process"] = per_company_id(company_id, "proofing",
                                                              item.proofing.id)
    if "evidence" in wanted:
        verification["evidence"] = [{
            "type": "document",
            "check_details": [{"check_method": "vpip",
                               "organization": settings.consortium_name_en,
                               "time": day}],
            "document_details": {"type": proofing.EVIDENCE[item.evidence],
                                 "issuer": {"country_code": "JPN"}},
        }]
    return verification


def build(resident, requests: list[dict], company_id: str) -> dict | list | None:
    """The ``verified_claims`` value for these requests, from the proofing in force,
    as the company ``company_id`` receives it."""
    framework = config.settings().proofing_trust_framework
    released = []
    for item in proofing.verified(resident):
        for request in requests:
            verification = request.get("verification") or {}
            if not _framework_ok(verification, framework):
                continue
            claims = _claims(resident, item.claims, request["claims"])
            if claims:
                released.append({"verification": _verification(item, verification, company_id),
                                 "claims": claims})
                break
    if not released:
        return None
    return released[0] if len(released) == 1 else released


def release_for(principal, target: str) -> dict | list | None:
    """verified_claims for the ID token or UserInfo, if every rule above holds now."""
    requests = (principal.claims or {}).get(target)
    if not requests or not principal.client.verified_claims_allowed:
        return None
    # The consent in force now: it may have been narrowed since the token was issued.
    requests = within_consent({target: requests}, principal.consent_in_force())
    if requests is None:
        return None
    return build(principal.resident, requests[target], principal.client.company_id)


def metadata(settings) -> dict[str, Any]:
    """Discovery members (IDA §8)."""
    return {
        "verified_claims_supported": True,
        "trust_frameworks_supported": [settings.proofing_trust_framework],
        "evidence_supported": EVIDENCE_TYPES,
        "documents_supported": sorted(set(proofing.EVIDENCE.values())),
        "documents_check_methods_supported": CHECK_METHODS,
        "claims_in_verified_claims_supported": sorted(CLAIM_SOURCES),
    }
