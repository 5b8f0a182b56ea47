"""One way to end access: every cut-off of grants and browser sessions goes through here.

``revoke_grants`` revokes tokens and expires unredeemed authorization codes
(and a resident's device codes); ``end_sessions`` ends browser sessions. Both
queue a logout token (OIDC Back-Channel Logout 1.0, ``idp.access.notices``)
for every client with a back-channel logout URI that had a session they end,
and a CAEP session-revoked security event (``idp.access.security_events``)
for every client with an event receiver that had one, in the caller's
transaction; the outbox delivers them after the commit. Some cut-offs tell
more (``EVENTS``): a withdrawn consent sends the client consent-withdrawn, and
an account deletion sends RISC account-purged to every client of every
company that was given the resident's pairwise ``sub`` (``forget_resident``,
before the subjects are deleted).

Who calls what:

================================  ==================================================
password reset                    ``end_sessions`` + ``revoke_grants(resident=)``
password change                   ``end_sessions(keep_session=this one)``
account deletion                  both, then ``forget_resident`` deletes the rows
declining the terms               ``end_sessions``
an admin signs a resident out     both
signing out, RP-initiated logout  ``end_sessions(session=this one)``
a page signs its browser out      ``end_sessions(session=this one)``
                                  (``idp.interaction.flow.sign_out``)
consent withdrawn                 ``revoke_grants(resident=, client=)``
client revoked                    ``revoke_grants(client=)``
client secret rotated, leaked     ``revoke_grants(client=)``
client settings narrowed          ``narrow_grants(client, …)``
one consent item stopped          ``narrow_grants(client, resident=, scopes=…)``
company suspended or revoked      ``revoke_grants(company=)``
company reinstated                ``expire_device_codes(clients)``
================================  ==================================================

A cut-off of a whole client or company (``revoke_grants`` without a resident,
``narrow_grants``) also bumps the revocation epoch (``idp.access.epoch``) in the
same transaction: nodes keep clients and companies in process and drop them when
the epoch moves. A resident's cut-off changes only rows every request reads
anyway (its tokens, consents, sessions, which no node caches), so it leaves the
epoch alone and every node's cache warm.

Token checks also look at the client's and company's state, so a cut-off
holds before this runs; writing it down means nothing comes back if a
company is later reinstated.

This is the floor every domain calls: it knows residents and clients only by
id (or takes the caller's rows, read duck-typed), and imports no domain.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy import update

from idp.access import epoch
from idp.access import notices
from idp.access import security_events
from idp.access.models import AuthorizationCode
from idp.access.models import BrowserSession
from idp.access.models import DeviceCode
from idp.access.models import PairwiseSubject
from idp.access.models import Token
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import delete_where
from idp.db import utcnow
from idp.extensions import db
from idp.outbox import service as outbox

# The security event a resident's cut-off at one client sends that client, besides
# session-revoked for its sessions: sent even when no session or token was live
# (the company may still hold what the resident shared).
EVENTS = {"consent_withdrawn": security_events.CONSENT_WITHDRAWN}


def _tell(found: list[notices.Notice]) -> None:
    """Queue what the sessions' clients are told: logout tokens and session-revoked."""
    notices.queue(found)
    security_events.for_notices(found)


def _id(value) -> str | None:
    """A resident's id, given the id or the row."""
    return value if value is None or isinstance(value, str) else value.id


def revoke_grants(*, resident=None, client=None, company=None, reason: str,
                  notify: bool = True) -> dict[str, int]:
    """Revoke the live tokens and expire the unredeemed codes of a resident, a client,
    a resident at a client, or every client of a company not revoked yet.

    ``resident`` is the row or its id; ``client`` and ``company`` are the caller's
    rows (``company.clients``, ``client.revoked_at``, ``client.backchannel_logout_uri``,
    ``client.event_receiver_uri``). A resident's cut-off at one client for a reason in
    ``EVENTS`` (a withdrawn consent) also sends the client that event.
    Returns ``{"tokens_revoked": n}``. A resident's device codes expire too. A
    cut-off client's device codes are left as they are: a kiosk's poll fails at
    client authentication, a resident entering the code is told the service
    is no longer connected (``idp.interaction.device``), and a reinstatement
    expires them, so none outlives the cut-off.
    """
    resident_id = _id(resident)
    if company is not None:
        revoked = 0
        for each in company.clients:
            if each.revoked_at is None:
                revoked += revoke_grants(resident=resident_id, client=each, reason=reason,
                                         notify=notify)["tokens_revoked"]
        return {"tokens_revoked": revoked}
    if resident_id is None and client is None:
        raise ValueError("revoke_grants needs a resident, a client or a company")
    if resident_id is None:
        # A whole client cut off: nodes keep clients in process (idp.access.epoch).
        epoch.bump(reason)
    if notify:
        _tell(notices.notices_for_grants(reason, client=client, resident_id=resident_id))
        if resident_id is not None and client is not None and reason in EVENTS:
            security_events.queue(client.id, resident_id, EVENTS[reason], reason=reason)
    now = utcnow()

    def scoped(model, *conditions):
        if resident_id is not None:
            conditions += (model.resident_id == resident_id,)
        if client is not None:
            conditions += (model.client_id == client.id,)
        return conditions

    tokens = db.session.execute(
        update(Token).where(*scoped(Token, Token.revoked_at.is_(None)))
        .values(revoked_at=now)).rowcount
    db.session.execute(
        update(AuthorizationCode)
        .where(*scoped(AuthorizationCode, AuthorizationCode.used_at.is_(None),
                       AuthorizationCode.expires_at > now))
        .values(expires_at=now))
    if resident_id is not None:
        db.session.execute(
            update(DeviceCode)
            .where(*scoped(DeviceCode, DeviceCode.consumed_at.is_(None),
                           DeviceCode.expires_at > now))
            .values(expires_at=now))
    return {"tokens_revoked": tokens}


def narrow_grants(client, *, scopes: set[str], redirect_uris: set[str] = frozenset(),
                  code_flow: bool = False, device_flow: bool = False,
                  reason: str = "client_narrowed", notify: bool = True,
                  resident=None) -> int:
    """Withdraw what an edit of ``client`` took away: tokens carrying a removed scope
    are revoked (their sessions are told, like any other cut-off), unredeemed codes
    carrying a removed scope or redirect URI expire, and so do all of them when the
    code flow (``code_flow``) or the device flow (``device_flow``) was removed.
    With ``resident`` (the row or its id) only that resident's grants at the client
    are narrowed: a resident stopped sharing one item with a service
    (``idp.consent.service.withdraw_item``). Returns how many token rows were revoked.

    A removed refresh_token grant needs nothing here: the token endpoint checks
    the client's grant types on every request.
    """
    resident_id = _id(resident)
    if resident_id is None:
        # The client's settings changed: cached copies are out of date. One resident
        # stopping an item changes only their own grants, which every request reads.
        epoch.bump(reason)
    now = utcnow()

    def whose(model) -> tuple:
        return (model.resident_id == resident_id,) if resident_id is not None else ()

    revoked = []
    if scopes:
        live = db.session.scalars(select(Token).where(Token.client_id == client.id,
                                                      Token.revoked_at.is_(None),
                                                      *whose(Token)))
        revoked = [token for token in live if set(token.scope.split()) & scopes]
    if notify and revoked:
        _tell(notices.notices_for_tokens(revoked, reason))
    for token in revoked:
        token.revoked_at = now
    codes = db.session.scalars(select(AuthorizationCode).where(
        AuthorizationCode.client_id == client.id, AuthorizationCode.used_at.is_(None),
        AuthorizationCode.expires_at > now, *whose(AuthorizationCode)))
    for code in codes:
        if code_flow or code.redirect_uri in redirect_uris or set(code.scope.split()) & scopes:
            code.expires_at = now
    device_codes = db.session.scalars(select(DeviceCode).where(
        DeviceCode.client_id == client.id, DeviceCode.consumed_at.is_(None),
        DeviceCode.expires_at > now, *whose(DeviceCode)))
    for code in device_codes:
        if device_flow or set(code.scope.split()) & scopes:
            code.expires_at = now
    return len(revoked)


def expire_device_codes(client_ids) -> int:
    """Expire the pending device codes of these clients (a reinstated company: a device
    authorization started before its suspension must not be completed now, the kiosk
    starts again). Returns how many expired."""
    now = utcnow()
    return db.session.execute(
        update(DeviceCode)
        .where(DeviceCode.client_id.in_(list(client_ids)),
               DeviceCode.consumed_at.is_(None), DeviceCode.expires_at > now)
        .values(expires_at=now)
    ).rowcount


def end_sessions(resident, reason: str, notify: bool = True,
                 keep_session: int | None = None,
                 session: BrowserSession | None = None) -> int:
    """End the resident's live browser sessions — all, all but ``keep_session``, or
    only ``session`` — and queue a logout token for each client they signed in to.
    Returns how many ended. Tokens stay (a relying party may hold offline access);
    ``revoke_grants`` takes those."""
    resident_id = _id(resident)
    now = utcnow()
    if session is not None:
        rows = [session] if session.ended_at is None and session.expires_at > now else []
    else:
        query = select(BrowserSession).where(BrowserSession.resident_id == resident_id,
                                             BrowserSession.ended_at.is_(None),
                                             BrowserSession.expires_at > now)
        if keep_session is not None:
            query = query.where(BrowserSession.id != keep_session)
        rows = list(db.session.scalars(query))
    for row in rows:
        if notify:
            _tell(notices.notices_for_session(row, reason))
        row.ended_at = now
    if session is None:
        # Sessions past their expiry are over already; mark them ended as well.
        query = (update(BrowserSession)
                 .where(BrowserSession.resident_id == resident_id,
                        BrowserSession.ended_at.is_(None)))
        if keep_session is not None:
            query = query.where(BrowserSession.id != keep_session)
        db.session.execute(query.values(ended_at=now).execution_options(
            synchronize_session=False))
    return len(rows)


def sign_out_everywhere(resident, reason: str, **audit) -> dict[str, int]:
    """An admin (console or ``idp users sign-out``) ends every session and grant of a
    resident, e.g. after a lost phone; audited with the counts."""
    counts = {"sessions_ended": end_sessions(resident, reason),
              **revoke_grants(resident=resident, reason=reason)}
    record(AuditTag.RESIDENT_SIGN_OUT, resident_id=resident.id, **counts, **audit)
    return counts


def forget_resident(resident_id: str) -> dict[str, int]:
    """Account deletion (``idp.privacy.deletion``), after ``end_sessions`` and
    ``revoke_grants`` queued the logout tokens: every company that was given the
    resident's pairwise ``sub`` is sent RISC account-purged (at each client with
    an event receiver) while the subjects still exist; then the resident's tokens,
    codes, pairwise subjects and browser sessions are deleted, so nothing a company
    holds can be linked to a later ID. Returns counts for the audit record."""
    told = security_events.queue_for_resident(resident_id, security_events.ACCOUNT_PURGED,
                                              reason="account_deleted")
    counts = {"security_events_queued": told,
              "tokens_revoked": delete_where(db.session, Token, Token.resident_id == resident_id)}
    delete_where(db.session, AuthorizationCode, AuthorizationCode.resident_id == resident_id)
    delete_where(db.session, DeviceCode, DeviceCode.resident_id == resident_id)
    counts["pairwise_subjects_removed"] = delete_where(db.session, PairwiseSubject,
                                                  PairwiseSubject.resident_id == resident_id)
    delete_where(db.session, BrowserSession, BrowserSession.resident_id == resident_id)
    outbox.forget_resident(resident_id)
    return counts


def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export (``idp.privacy.export``): sign-in sessions
    and token grants, metadata only (never a digest). ``names.service`` names a
    client for people."""
    return {
        "sessions": [
            {"signed_in_at": s.auth_time, "expires_at": s.expires_at,
             "ended_at": s.ended_at, "methods": list(s.amr or [])}
            for s in db.session.scalars(select(BrowserSession)
                                        .where(BrowserSession.resident_id == resident_id)
                                        .order_by(BrowserSession.auth_time))
        ],
        "tokens": [
            {**names.service(t.client_id), "grant_type": t.grant_type, "scope": t.scope,
             "issued_at": t.issued_at, "access_expires_at": t.access_expires_at,
             "refresh_expires_at": t.refresh_expires_at,
             "revoked_at": t.revoked_at}
            for t in db.session.scalars(select(Token).where(Token.resident_id == resident_id)
                                        .order_by(Token.issued_at))
        ],
    }
