"""Token storage hooks: save, look up by digest, rotate and revoke families.

Shared by the grants (``grants.py``), the resource protector, introspection
and revocation, so each rule lives once.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import JSON
from sqlalchemy import Integer
from sqlalchemy import Select
from sqlalchemy import String
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal_column
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import with_expression

from idp import config
from idp import metrics
from idp import secrets
from idp.access import epoch
from idp.access.models import Token
from idp.accounts.models import Resident
from idp.audit import chain
from idp.audit.service import PENDING as audit_pending
from idp.audit.service import entry as audit_entry
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients.models import Client
from idp.clients.models import Company
from idp.clients.models import CompanyStatus
from idp.consent import service as consent_service
from idp.db import claim_once
from idp.db import holds_transaction
from idp.db import run_alone
from idp.db import utcnow
from idp.extensions import db
from idp.oauth.claims import RESIDENT_FIELDS


@dataclass
class Principal:
    """A resident as one company sees them: the row plus that company's `sub`."""

    resident: Resident
    sub: str
    client: Client
    # The consented verified_claims requests, by target (idp.oauth.assurance).
    claims: dict | None = None
    # The items of the consent in force now, once read (with the token, or by the grant).
    consented: set[str] | None = None

    @property
    def id(self) -> str:
        return self.resident.id

    def consent_in_force(self) -> set[str]:
        """What the resident's consent to this client covers at this moment; nothing
        is released beyond it, whatever a code or token was issued with."""
        if self.consented is None:
            self.consented = consent_service.scopes_in_force(self.resident.id, self.client.id)
        return self.consented


@dataclass
class PresentedToken:
    """A token string as presented to introspection or revocation: the row and its kind."""

    row: Token
    kind: str  # "access_token" or "refresh_token"

    def check_client(self, client) -> bool:
        return self.row.check_client(client)

    def get_client(self):
        return self.row.client

    def get_scope(self) -> str:
        return self.row.scope

    def is_expired(self) -> bool:
        if self.kind == "refresh_token":
            return self.row.refresh_expires_at is None or self.row.refresh_expires_at <= utcnow()
        return self.row.is_expired()

    def is_revoked(self) -> bool:
        if self.kind == "refresh_token" and self.row.refresh_used_at is not None:
            return True
        return self.row.is_revoked()

    @property
    def expires_at(self) -> dt.datetime | None:
        if self.kind == "refresh_token":
            return self.row.refresh_expires_at
        return self.row.access_expires_at


# A presented token comes with its client as the protocol checks need it: who
# it is, its company, and whether both are still active (a revoked client or a
# suspended company cuts the token off on this very request). The rest of the
# client (redirect URIs, texts, keys) loads on first use, if ever: the wide
# row cost more to read than the token itself (docs/performance.md).
CLIENT_STATE = (
    joinedload(Token.client)
    .load_only(Client.id, Client.company_id, Client.is_public, Client.revoked_at,
               Client.verified_claims_allowed)
    .joinedload(Client.company).load_only(Company.id, Company.status)
)


@functools.cache
def _lookup(column_name: str, resident: bool) -> Select:
    """The lookup of a token by one of its digests, built once per process: a statement
    built per request spent a third of introspection's CPU building and keying itself
    (docs/performance.md). Run with ``digest`` and the consent's ``in_force_values()``."""
    options = [CLIENT_STATE, with_expression(
        Token.consent_scopes, consent_service.in_force_sql(Token.resident_id, Token.client_id))]
    if resident:
        options.append(joinedload(Token.resident))
    return (select(Token, epoch.column()).options(*options)
            .where(getattr(Token, column_name) == bindparam("digest")))


def _by_digest(column_name: str, value: str, resident: bool) -> Token | None:
    """The token whose ``column_name`` holds the digest of ``value``, with its client's
    state, the consent in force behind it (``Token.consent_scopes``: every use of a
    token follows the consent as it is now), and its resident in the same query when
    the caller reads it (UserInfo, touch events, refresh rotation). The revocation
    epoch rides along, so a request that took its client from the cache needs no read
    of its own to confirm it (``idp.access.epoch``)."""
    if not isinstance(value, str) or not value:
        return None
    found = db.session.execute(_lookup(column_name, resident), {
        "digest": secrets.digest(value), **consent_service.in_force_values()}).first()
    if found is None:
        return None
    epoch.seen(found[1])  # the revocation epoch rides along (idp.access.epoch)
    return found[0]


def by_access_token(value: str, *, resident: bool = False) -> Token | None:
    return _by_digest("access_token_digest", value, resident)


def by_refresh_token(value: str, *, resident: bool = False) -> Token | None:
    return _by_digest("refresh_token_digest", value, resident)


@functools.cache
def state_lookup() -> Select:
    """The access token by its digest as plain values: its own columns, its client's and
    company's state, the consent in force behind it and the revocation epoch, in one
    constant statement built on first use (once every mapper is configured). Run with
    ``digest`` and the consent's ``in_force_values()``. The requests answered beneath
    Flask read their token so (``idp.oauth.direct``): no object is built for the token,
    its client and its company, which cost a touch batch a quarter of its workers' CPU
    (docs/performance.md)."""
    return (select(Token.id, Token.client_id, Token.resident_id, Token.subject, Token.scope,
                   Token.grant_type, Token.family_id, Token.issued_at,
                   Token.access_expires_at, Token.revoked_at, Client.company_id,
                   Client.revoked_at.label("client_revoked_at"),
                   Company.status.label("company_status"),
                   consent_service.in_force_sql(Token.resident_id, Token.client_id)
                   .label("consent_scopes"),
                   epoch.column().label("epoch"))
            .join_from(Token, Client, Token.client_id == Client.id)
            .join_from(Client, Company, Client.company_id == Company.id)
            .where(Token.access_token_digest == bindparam("digest")))


@functools.cache
def resident_state_lookup() -> Select:
    """``state_lookup`` with what UserInfo reads besides: the token's ``claims`` request and
    its last release (``released_claims``), and the fields of its resident that claims are
    read from (``idp.oauth.claims.RESIDENT_FIELDS``), for ``ResidentTokenState``."""
    return (state_lookup()
            .add_columns(Token.claims, Token.released_claims,
                         *(getattr(Resident, name).label("resident_" + name)
                           for name in RESIDENT_FIELDS))
            .join_from(Token, Resident, Token.resident_id == Resident.id))


@dataclass(frozen=True)
class ClientState:
    """A token's client as a token's checks need it: who it is, its company, and whether
    both are active (``Client.is_active``: not revoked, its company active)."""

    id: str
    company_id: str
    is_active: bool


class TokenState:
    """An access token read as values (``state_lookup``), for a request beneath Flask that
    needs no object of it: what the resource protector's validator asks of a token
    (Authlib's ``TokenMixin``: expired, revoked, scope), the consent in force behind it
    (``consent_scopes``, as ``Token`` carries it when read with it), its family's origin
    (``origin``) and its client as ``ClientState``."""

    def __init__(self, row) -> None:
        self.id: int = row.id
        self.client_id: str = row.client_id
        self.resident_id: str | None = row.resident_id
        self.subject: str | None = row.subject
        self.scope: str = row.scope
        self.grant_type: str = row.grant_type
        self.family_id: str = row.family_id
        self.issued_at: dt.datetime = row.issued_at
        self.access_expires_at: dt.datetime = row.access_expires_at
        self.revoked_at: dt.datetime | None = row.revoked_at
        self.consent_scopes: list[str] | None = row.consent_scopes
        self.client = ClientState(row.client_id, row.company_id,
                                  row.client_revoked_at is None
                                  and row.company_status == CompanyStatus.ACTIVE)
        self.epoch = row.epoch

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.access_expires_at <= utcnow()

    def is_revoked(self) -> bool:
        # As Token's: a revoked client or a suspended company cuts its tokens off at once.
        return self.revoked_at is not None or not self.client.is_active


class ResidentTokenState(TokenState):
    """A resident's access token as values (``resident_state_lookup``), for UserInfo
    beneath Flask: a ``TokenState`` with the token's ``claims`` request, its last release
    (``released_claims``: ``idp.oauth.oidc.release`` sets it, and the caller writes it
    when it changed) and its resident as the fields claims are read from."""

    def __init__(self, row) -> None:
        super().__init__(row)
        self.claims: dict | None = row.claims
        self.released_claims: str | None = row.released_claims
        self.resident = SimpleNamespace(id=row.resident_id, **{
            name: getattr(row, "resident_" + name) for name in RESIDENT_FIELDS})


def state_by_access_token(value: str, *, resident: bool = False) -> TokenState | None:
    """The access token ``value`` as values (``TokenState``; with ``resident``, a resident's
    token as ``ResidentTokenState``), or None when no such access token has that string.
    Read by itself (``idp.db.run_alone``: in the session's transaction if it holds one).
    The revocation epoch rides along, as ``by_access_token``'s."""
    if not isinstance(value, str) or not value:
        return None
    row = run_alone(db.session(), resident_state_lookup() if resident else state_lookup(), {
        "digest": secrets.digest(value), **consent_service.in_force_values()})
    if row is None:
        return None
    epoch.seen(row.epoch)
    return ResidentTokenState(row) if resident else TokenState(row)


def release_noted(token: ResidentTokenState) -> None:
    """Write the release ``idp.oauth.oidc.release`` noted on a token read as values, in
    the session's transaction (with the release's audit entry)."""
    db.session.execute(update(Token).where(Token.id == token.id)
                       .values(released_claims=token.released_claims))


def presented(value: str, hint: str | None) -> PresentedToken | None:
    """Find a token by its string; the hint says where to look first (RFC 7009 §2.1)."""
    order = ["refresh_token", "access_token"] if hint == "refresh_token" else [
        "access_token", "refresh_token"]
    for kind in order:
        row = by_access_token(value) if kind == "access_token" else by_refresh_token(value)
        if row is not None:
            return PresentedToken(row, kind)
    return None


@dataclass(frozen=True)
class Origin:
    """How a resident's token family began: when, and by which grant."""

    granted_at: dt.datetime
    grant_type: str


def origin(row: Token | TokenState) -> Origin | None:
    """When and how the grant behind a resident's token first turned into tokens (a
    code redeemed, a device code collected after the resident approved): the first
    token of its family, which rotation keeps. A refreshed token says
    ``grant_type="refresh_token"``; what the family is (a session at a kiosk or not)
    is the first token's grant. None for a token without a resident. What the token
    records about the resident cannot predate it."""
    if row.resident_id is None:
        return None
    if row.grant_type != "refresh_token":
        return Origin(row.issued_at, row.grant_type)  # the family's first token
    first = db.session.execute(
        select(Token.issued_at, Token.grant_type).where(Token.family_id == row.family_id)
        .order_by(Token.issued_at, Token.id).limit(1)).one()
    return Origin(first.issued_at, first.grant_type)


# One constant statement: its cache key is computed once, not per request. The
# revocation epoch rides along: the answer that hands out this token is given only
# if no cut-off committed since the client was cached (idp.access.epoch).
_INSERT = insert(Token.__table__).returning(Token.__table__.c.id, epoch.column())


def save(token: dict, request) -> int:
    """Store an issued token (digests only) with its family and origin; returns its id.

    A plain INSERT … RETURNING id rather than an ORM object and a flush: the
    row is not read again in the request, and the unit of work cost as much
    CPU as the rest of a client_credentials request (docs/performance.md).
    """
    client = request.client
    principal: Principal | None = request.user
    previous: Token | None = request.refresh_token
    code = request.authorization_code
    values, tag, audit, details = _issuance(token, client, request.payload.grant_type,
                                            principal, previous, code)
    if principal is None and previous is None and code is None:  # client credentials
        token_id = _issued_alone(values, tag, audit, details)
        if token_id is not None:
            return token_id
    # On the session's connection: the session's own execution layer added a fifth to
    # the statement's Python calls, for an INSERT it has nothing to track of.
    token_id, seen = db.session.connection().execute(_INSERT, values).one()
    epoch.seen(seen)
    record(tag, **audit, token_id=token_id, **details)
    return token_id


def _issuance(token: dict, client, grant_type: str, principal: Principal | None,
              previous: Token | None, code) -> tuple[dict, AuditTag, dict, dict]:
    """The token's row, and its audit entry's tag, fields and details."""
    settings = config.settings()
    now = utcnow()
    refresh = token.get("refresh_token")
    values = {
        "client_id": client.id,
        "resident_id": principal.resident.id if principal else None,
        "subject": principal.sub if principal else None,
        "grant_type": grant_type,
        "scope": token.get("scope", ""),
        "access_token_digest": secrets.digest(token["access_token"]),
        "refresh_token_digest": secrets.digest(refresh) if refresh else None,
        "family_id": previous.family_id if previous else secrets.token(24),
        "code_id": code.id if code is not None else (previous.code_id if previous else None),
        "issued_at": now,
        "claims": principal.claims if principal else None,
        "access_expires_at": now + dt.timedelta(seconds=int(token["expires_in"])),
        "refresh_expires_at": (now + dt.timedelta(seconds=settings.refresh_token_ttl)
                               if refresh else None),
        "refresh_used_at": None,
        "revoked_at": None,
        "released_claims": None,
    }
    tag = AuditTag.TOKEN_REFRESH if previous is not None else AuditTag.TOKEN_ISSUE
    audit = dict(resident_id=values["resident_id"], client_id=client.id,
                 company_id=client.company_id, grant_type=values["grant_type"],
                 scope=values["scope"])
    details = dict(family=values["family_id"], refresh_token=bool(refresh))
    return values, tag, audit, details


def _issued_alone(values: dict, tag: AuditTag, audit: dict, details: dict) -> int | None:
    """A token that is the request's only write (client credentials), issued with its
    audit entry in one statement (``_issue_alone``, PostgreSQL) committed by itself: one
    round trip for BEGIN, two INSERTs and COMMIT. Written only while the revocation
    epoch is the value the request relies on (``epoch.run_unmoved``); None, with nothing
    written, when this path does not apply or the epoch moved (the caller then issues
    it in the session's transaction, where the moved epoch is noticed as before)."""
    session = db.session()
    if not epoch.can_run_unmoved() or not _alone_possible(session):
        return None
    return _issue(values, tag, audit, details, epoch.run_unmoved)


def _alone_possible(session) -> bool:
    """Whether the session has nothing of its own to write with the token."""
    return not (session.info.get(audit_pending) or session.new or session.dirty
                or session.deleted)


def _issue(values: dict, tag: AuditTag, audit: dict, details: dict, run,
           caller: tuple[str | None, str | None] | None = None) -> int | None:
    session = db.session()
    in_transaction = holds_transaction(session)
    event = audit_entry(tag, **audit, **details, caller=caller)
    row = chain.entry_row(event)
    params = {f"t_{name}": value for name, value in values.items()}
    params.update({f"a_{name}": value for name, value in row.items() if name != "data"})
    params["a_data"] = json.dumps(row["data"], ensure_ascii=False)
    found = run(_issue_alone(tuple(values)), params)
    if found is None:
        return None
    event.data = {**event.data, "token_id": found.token_id}
    metrics.count_events(session if in_transaction else None, [event])
    return found.token_id


def issue_client_credentials(token: dict, client, under_epoch,
                             caller: tuple[str | None, str | None]) -> int | None:
    """A client-credentials token for ``client`` and its audit entry, written only while
    the revocation epoch is ``under_epoch``: the value the cached client was read under
    (``idp.oauth.direct``, outside a Flask request, whose ``caller`` is the request's IP
    address and user agent). On PostgreSQL one statement committed by itself; on SQLite
    the INSERT reads the epoch along and the audit entry joins the session's
    transaction, which the caller commits. None when the epoch moved: nothing is then
    written (on SQLite, the session is rolled back)."""
    session = db.session()
    if not _alone_possible(session):
        return None
    values, tag, audit, details = _issuance(token, client, "client_credentials", None, None,
                                            None)
    if session.get_bind().dialect.name == "postgresql":
        return _issue(values, tag, audit, details,
                      lambda statement, params: epoch.run_under(statement, params,
                                                                under_epoch),
                      caller)
    token_id, seen = session.connection().execute(_INSERT, values).one()
    if seen != under_epoch:
        session.rollback()
        return None
    record(tag, **audit, token_id=token_id, **details, caller=caller)
    return token_id


@functools.cache
def _issue_alone(columns: tuple[str, ...]):
    """``INSERT INTO tokens … WHERE <epoch unchanged> RETURNING id``, and the audit entry
    with the new token's id, in one statement built once per process."""
    table = Token.__table__
    issued = (insert(table).from_select(
        list(columns),
        select(*(bindparam(f"t_{name}", type_=table.c[name].type) for name in columns))
        .where(epoch.unmoved()))
        .returning(table.c.id).cte("issued"))
    data = cast(cast(bindparam("a_data", type_=String()), JSONB).op("||")(
        func.jsonb_build_object(literal_column("'token_id'"), issued.c.id)), JSON)
    events = chain.EVENTS
    entry = [data if name == "data" else bindparam(f"a_{name}", type_=events.c[name].type)
             for name in chain.ENTRY_COLUMNS]
    return (events.insert()
            .from_select([*chain.ENTRY_COLUMNS, "xid"],
                         select(*entry, chain.CURRENT_XID).select_from(issued))
            .returning(cast(events.c.data.op("->>")(literal_column("'token_id'")), Integer)
                       .label("token_id")))


def claim_refresh(row: Token) -> bool:
    """Mark a refresh token used; True only for the one caller that wins the race.

    ``UPDATE … WHERE refresh_used_at IS NULL`` takes the row lock on
    PostgreSQL: a concurrent rotation waits, then sees the row taken.
    """
    return claim_once(db.session, Token.refresh_used_at, row.id, utcnow(),
                      Token.revoked_at.is_(None))


def revoke_family(family_id: str, reason: str, **audit) -> None:
    # Lock the family's rows in one order (by id) before the UPDATE: concurrent losers of
    # a refresh race each revoke the family, and a multi-row UPDATE locks rows in scan
    # order, which after a wait can differ between transactions and deadlock on
    # PostgreSQL (seen with 20 parallel refreshes). SQLite has one writer and no FOR UPDATE.
    db.session.execute(
        select(Token.id).where(Token.family_id == family_id).order_by(Token.id).with_for_update()
    ).all()
    db.session.execute(
        update(Token)
        .where(Token.family_id == family_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    record(AuditTag.TOKEN_REVOKE, family=family_id, reason=reason, **audit)


def revoke_from_code(code_id: int) -> list[str]:
    """Revoke every token descended from an authorization code (RFC 6749 §4.1.2)."""
    families = list(db.session.scalars(
        select(Token.family_id).where(Token.code_id == code_id).distinct()
    ))
    for family in families:
        revoke_family(family, "code_replay", code_id=code_id)
    return families


def revoke(presented_token: PresentedToken, client) -> None:
    """RFC 7009: a refresh token takes its whole family; an access token its own row."""
    row = presented_token.row
    audit = dict(resident_id=row.resident_id, client_id=client.id, company_id=client.company_id)
    if presented_token.kind == "refresh_token":
        revoke_family(row.family_id, "revocation_endpoint", **audit)
    elif row.revoked_at is None:
        row.revoked_at = utcnow()
        record(AuditTag.TOKEN_REVOKE, token_id=row.id, reason="revocation_endpoint", **audit)
