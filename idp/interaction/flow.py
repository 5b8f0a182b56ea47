"""The interaction's flow: it saves a request that needs the resident, resumes
it, and decides with the policy table (``idp.interaction.policy``) where the
resident goes next.

Per-browser state: the signed-in session and pending authorization requests.
A pending request (an "interaction") is the authorization request's query
string kept in the signed session cookie while the resident signs in or
decides on consent; it is replayed through ``idp.oauth.authorize`` when they
are done.

Following a request goes one way: views → flow → policy → domain services and
the protocol (``idp.oauth.authorize``), which never calls back up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import g
from flask import redirect
from flask import request
from flask import session
from flask import url_for

from idp import secrets
from idp.access import service as access
from idp.access import sessions
from idp.access.models import BrowserSession
from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.consent import service as consent_service
from idp.exchange import links
from idp.extensions import db
from idp.interaction import pages
from idp.interaction import policy
from idp.interaction.locale import from_ui_locales
from idp.kiosk.service import kiosk_for
from idp.oauth import authorize as protocol
from idp.oauth import device as device_flow

INTERACTION_TTL = 1800
MAX_INTERACTIONS = 5


def browser_session() -> BrowserSession | None:
    if "idp_browser_session" not in g:
        g.idp_browser_session = sessions.load_session(session.get("sid"))
    return g.idp_browser_session


def current_resident() -> Resident | None:
    row = browser_session()
    return db.session.get(Resident, row.resident_id) if row else None


# What a browser carries across sign-in: the requests it is in the middle of.
KEPT_AT_SIGN_IN = ("interactions", "locale", "device_code_id", "device_user_code")


def sign_in(resident: Resident, amr: list[str] | None = None) -> BrowserSession:
    """Start a new session: a fresh id, so a planted cookie never becomes signed in."""
    kept = {key: session[key] for key in KEPT_AT_SIGN_IN if key in session}
    session.clear()
    sid, row = sessions.start_session(resident, amr)
    session["sid"] = sid
    session.update(kept)
    session.permanent = True
    g.idp_browser_session = row
    return row


def sign_out(reason: str) -> None:
    """Sign this browser out. A session still live ends through the one way to end
    access (``access.end_sessions``): the clients it signed in to are told, like at
    any other cut-off. After a cut-off that ended every session already (terms
    declined, deletion) only the cookie is left to forget."""
    row = sessions.load_session(session.get("sid"))
    if row is not None:
        access.end_sessions(row.resident_id, reason, session=row)
        record(AuditTag.LOGOUT, resident_id=row.resident_id, reason=reason)
    session.clear()
    g.idp_browser_session = None


def save_interaction(query: str, locale: str | None) -> str:
    now = time.time()
    pending = {
        uid: item for uid, item in session.get("interactions", {}).items()
        if item["created"] + INTERACTION_TTL > now
    }
    uid = secrets.token(12)
    pending[uid] = {"query": query, "created": now, "login_session": None, "locale": locale}
    while len(pending) > MAX_INTERACTIONS:
        pending.pop(min(pending, key=lambda k: pending[k]["created"]))
    session["interactions"] = pending
    return uid


def load_interaction(uid: str | None) -> dict | None:
    item = session.get("interactions", {}).get(uid or "")
    if item is None or item["created"] + INTERACTION_TTL <= time.time():
        return None
    return item


def live_interaction(uid: str | None) -> str | None:
    """``uid`` when it names a pending request of this browser, else None."""
    return uid if uid and load_interaction(uid) is not None else None


def mark_logged_in(uid: str, row: BrowserSession) -> None:
    pending = session.get("interactions", {})
    if uid in pending:
        pending[uid]["login_session"] = row.id
        session["interactions"] = pending


def choose_locale(code: str) -> None:
    """The resident picked a language: it overrides ui_locales of pending requests."""
    pending = session.get("interactions", {})
    for item in pending.values():
        item["locale"] = code
    session["interactions"] = pending


# How a finished interaction ended, kept (per browser, like the interaction) so that
# coming back to it — the back button after consent — says so instead of "expired".
ALLOWED = "allowed"
DECLINED = "declined"


def finish_interaction(uid: str, client_id: str | None = None,
                       outcome: str = ALLOWED) -> None:
    pending = session.get("interactions", {})
    if pending.pop(uid, None) is not None:
        session["interactions"] = pending
        now = time.time()
        finished = {
            key: item for key, item in session.get("finished_interactions", {}).items()
            if item["at"] + INTERACTION_TTL > now
        }
        finished[uid] = {"client_id": client_id, "outcome": outcome, "at": now}
        while len(finished) > MAX_INTERACTIONS:
            finished.pop(min(finished, key=lambda k: finished[k]["at"]))
        session["finished_interactions"] = finished


def finished_interaction(uid: str | None) -> dict | None:
    """How this browser's interaction ``uid`` ended ({client_id, outcome, at}), or None
    when it is not one this browser finished recently (another browser's, a signed-out
    session's, an unknown one)."""
    item = session.get("finished_interactions", {}).get(uid or "")
    if item is None or item["at"] + INTERACTION_TTL <= time.time():
        return None
    return item


def gone(uid: str | None):
    """The page for an interaction that is no longer pending: finished (with a way back
    to the service) or expired."""
    finished = finished_interaction(uid)
    if finished is None:
        return pages.expired_interaction()
    client = clients.find_client(finished["client_id"]) if finished["client_id"] else None
    # Looking again is fine; submitting a finished form again is not (and does nothing).
    return pages.finished_interaction(client, finished["outcome"] == ALLOWED,
                                      200 if request.method == "GET" else 400)


def passkey_required(item: dict | None) -> bool:
    """Whether the pending request waits for a passkey sign-in (the policy's
    ``phishing_resistant`` check): the login page then offers only that."""
    if item is None:
        return False
    row = browser_session()
    if row is None:
        return False
    context = policy.Context(client=None, resident=db.session.get(Resident, row.resident_id),
                             signed_in=True, session_amr=list(row.amr or []),
                             acr_values=protocol.acr_values(request_args(item)))
    return not policy.PHISHING_RESISTANT.met(context)


def request_args(item: dict):
    """The parameters of a pending request (client_id, login_hint, …)."""
    return protocol.rebuild(item["query"]).args


# ---- deciding ---------------------------------------------------------------------

@dataclass
class Pending:
    """A validated request waiting for the resident's decision on the consent page."""

    grant: object
    client: object
    resident: Resident
    requested: list[str]


# The page of each step, and the name under which it takes the pending request.
STEP_PAGES = {
    "login": ("interaction.login", "interaction"),
    "second_factor": ("interaction.second_factor", "interaction"),
    "passkey": ("interaction.login", "interaction"),
    "terms": ("interaction.terms", "interaction"),
    "consent": ("interaction.consent", "uid"),
}


def _ask(check: policy.Check, uid: str):
    """Send the resident to the page of ``check`` for the pending request ``uid``."""
    endpoint, argument = STEP_PAGES[check.step]
    return redirect(url_for(endpoint, **{argument: uid}))


def authorize(source, uid: str | None = None):
    """Run the policy over an authorization request: issue the code, or save the
    request and send the resident to the first step it still needs."""
    item = load_interaction(uid) if uid else None
    args = source.args
    # ui_locales counts when the request arrives; once it is an interaction,
    # the interaction's locale does (the resident may have switched language).
    g.ui_locale = item.get("locale") if item is not None else from_ui_locales(
        args.get("ui_locales"))
    context = policy.Context(client=clients.known_client(args.get("client_id")),
                             prompts=protocol.prompts(args),
                             acr_values=protocol.acr_values(args))
    if policy.first_unmet(context, policy.BEFORE_VALIDATION) is not None:
        return pages.disconnected(context.client)
    row = browser_session()
    fresh = row is not None and item is not None and item["login_session"] == row.id
    try:
        logged_in = protocol.login_satisfies(args, row, fresh)
        bad_max_age = False
    except ValueError:
        logged_in, bad_max_age = row is not None, True
    resident = db.session.get(Resident, row.resident_id) if logged_in else None
    try:
        validated = protocol.validate(source, resident, bad_max_age)
        context.client, context.requested = validated.client, validated.requested
        context.resident, context.signed_in = resident, resident is not None
        context.session_amr = list(row.amr or []) if logged_in else []
        unmet = policy.first_unmet(context, policy.AFTER_VALIDATION)
        if unmet is not None:
            if "none" in context.prompts and unmet.cannot_interact:
                return protocol.cannot_interact(validated, unmet.cannot_interact, args)
            uid = uid or save_interaction(source.query_string.decode(), g.ui_locale)
            return _ask(unmet, uid)
    except protocol.Answered as answer:
        return answer.response
    except protocol.Refused as refused:
        return pages.refused(refused.detail)
    if uid:
        finish_interaction(uid, validated.client.id)
    return protocol.issue_code(validated.grant, resident, row, context.consented)


def resume(uid: str):
    """Continue an interaction after a step (login, second factor, terms)."""
    item = load_interaction(uid)
    if item is None:
        return gone(uid)
    return authorize(protocol.rebuild(item["query"]), uid)


def pending_consent(uid: str) -> Pending | object:
    """The request awaiting consent, or a response to send instead: every check of
    the table before consent still holds (new terms may be published, the client
    disconnected, the session ended while the page was open)."""
    item = load_interaction(uid)
    if item is None:
        return gone(uid)
    g.ui_locale = item.get("locale")
    source = protocol.rebuild(item["query"])
    resident = current_resident()
    row = browser_session()
    context = policy.Context(client=clients.known_client(source.args.get("client_id")),
                             resident=resident, signed_in=resident is not None,
                             acr_values=protocol.acr_values(source.args),
                             session_amr=list(row.amr or []) if row else [])
    unmet = policy.first_unmet(context, policy.CHECKS[:-1])
    if unmet is policy.CLIENT_STILL_CONNECTED:
        return pages.disconnected(context.client)
    if unmet is not None:
        return _ask(unmet, uid)
    try:
        validated = protocol.validate(source, resident)
    except protocol.Answered as answer:
        return answer.response
    except protocol.Refused as refused:
        return pages.refused(refused.detail)
    return Pending(validated.grant, validated.client, resident, validated.requested)


def decide(uid: str, pending: Pending, allow: bool, granted: list[str],
           link_expiry: str | None = None):
    """Record the resident's decision and answer the client. ``link_expiry`` is the
    expiry chosen for the data links of the registered data consented to
    (``idp.exchange.links.EXPIRY_CHOICES``)."""
    finish_interaction(uid, pending.client.id, ALLOWED if allow else DECLINED)
    if not allow:
        consent_service.record_denial(pending.resident, pending.client, pending.requested)
        return protocol.deny(pending.grant)
    granted = [s for s in granted if s in pending.requested]
    consent = consent_service.grant(pending.resident, pending.client, pending.requested,
                                    granted)
    links.grant(pending.resident.id, pending.client, pending.requested, consent.scopes,
                link_expiry)
    return protocol.issue_code(pending.grant, pending.resident, browser_session())


def refuse(uid: str):
    """The resident declined to go on (the terms page): answer the client's pending
    request with ``access_denied`` when it can be trusted; None when there is nothing
    to answer (expired interaction, disconnected client, invalid request)."""
    item = load_interaction(uid)
    if item is None:
        return None
    source = protocol.rebuild(item["query"])
    context = policy.Context(client=clients.known_client(source.args.get("client_id")))
    if policy.first_unmet(context, policy.BEFORE_VALIDATION) is not None:
        return None
    try:
        validated = protocol.validate(source, None)
    except (protocol.Answered, protocol.Refused):
        return None
    finish_interaction(uid, validated.client.id, DECLINED)
    return protocol.deny(validated.grant)


def device_request() -> tuple[object, object] | None:
    """The kiosk request this browser is confirming (``/device`` → login → consent):
    (client, kiosk or None) while its device code is pending, else None."""
    row = db.session.get(device_flow.DeviceCode, session.get("device_code_id") or 0)
    if row is None or row.status != "pending" or row.is_expired():
        return None
    return row.client, kiosk_for(row.client_id)


def confirm_device(client) -> tuple[object | None, Resident | None]:
    """The device flow's pass through the same table: (a response to send instead
    of the consent page, or None; the signed-in resident). Consent is always asked
    there (RFC 8628 §5.4), so the table never lets a device code through alone."""
    resident = current_resident()
    context = policy.Context(client=client, resident=resident, signed_in=resident is not None,
                             always_ask_consent=True)
    unmet = policy.first_unmet(context)
    here = url_for("device.confirm")
    if unmet is policy.CLIENT_STILL_CONNECTED:
        return pages.disconnected(client), resident
    if unmet is not None and unmet.step == "login":
        return redirect(url_for("interaction.login", next=here)), resident
    if unmet is not None and unmet.step == "terms":
        # A new consortium terms version must be accepted before any authorization.
        return redirect(url_for("interaction.terms", next=here)), resident
    return None, resident
