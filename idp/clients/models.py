"""Company (a consortium member, the pairwise sector) and Client (its apps).

``Client`` implements Authlib's ``ClientMixin`` interface on typed columns,
without inheriting it: Authlib duck-types its models, and only ``idp.oauth``
imports Authlib. The secret is stored only as a SHA-256 digest (STYLE rule 6):
Authlib's own SQLAlchemy mixin compares plaintext secrets, which we do not keep.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import false
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from idp import secrets
from idp.db import Base
from idp.db import created_at


class CompanyStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class Company(Base):
    """A consortium member. It is the pairwise sector (OIDC Core §8.1): every
    client of one company sees the same `sub` for a resident, no two companies do."""

    __tablename__ = "companies"

    id: Mapped[str] = mapped_column(String(16), primary_key=True,
                                    default=lambda: secrets.random_id(12, "co_"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=CompanyStatus.ACTIVE)
    created_at: Mapped[created_at]
    suspended_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    clients: Mapped[list[Client]] = relationship(back_populates="company")
    # The data-use contract, newest first: a renewal is a new row, the old
    # ones stay as the company's history.
    contracts: Mapped[list[CompanyContract]] = relationship(
        back_populates="company",
        order_by="(CompanyContract.signed_on.desc(), CompanyContract.id.desc())")

    @property
    def is_active(self) -> bool:
        return self.status == CompanyStatus.ACTIVE

    @property
    def contract(self) -> CompanyContract | None:
        """The contract in force: the one signed last."""
        return self.contracts[0] if self.contracts else None


class CompanyContract(Base):
    """A data-use contract (利用契約) a member company signed: scope of use,
    liability, usage reports and audits, breach notification (the seed's terms
    for members). The consortium keeps the reference of the signed paper, not
    the paper."""

    __tablename__ = "company_contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    reference: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(40))
    signed_on: Mapped[dt.date]
    recorded_at: Mapped[created_at]
    recorded_by: Mapped[str | None] = mapped_column(String(100))

    company: Mapped[Company] = relationship(back_populates="contracts")


class ClientMetadata(Mapping[str, Any]):
    """A client's RFC 7591 metadata, read from its columns when asked for.

    Authlib asks UserInfo's client for one member (``userinfo_signed_response_alg``)
    on every call; building the whole dict read every column of a client that
    token lookups load only in part (``idp.oauth.tokens.CLIENT_STATE``).
    """

    MEMBERS: dict[str, Any] = {
        "client_name": lambda c: c.name,
        "redirect_uris": lambda c: list(c.redirect_uris),
        "post_logout_redirect_uris": lambda c: list(c.post_logout_redirect_uris),
        "grant_types": lambda c: list(c.grant_types),
        "scope": lambda c: " ".join(c.scopes),
        "token_endpoint_auth_method": lambda c: c.token_endpoint_auth_method,
        "client_uri": lambda c: c.client_uri,
        "policy_uri": lambda c: c.policy_uri,
        "tos_uri": lambda c: c.tos_uri,
        "backchannel_logout_uri": lambda c: c.backchannel_logout_uri,
        "backchannel_logout_session_required": lambda c: bool(c.backchannel_logout_uri),
    }

    def __init__(self, client: Client) -> None:
        self._client = client

    def __getitem__(self, name: str) -> Any:
        try:
            member = self.MEMBERS[name]
        except KeyError:
            raise KeyError(name) from None
        return member(self._client)

    def __iter__(self) -> Iterator[str]:
        return iter(self.MEMBERS)

    def __len__(self) -> int:
        return len(self.MEMBERS)


class Client(Base):
    """A company's app (an OAuth client); its ``get_*``/``check_*`` methods implement
    Authlib's ``ClientMixin`` interface."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    is_public: Mapped[bool] = mapped_column(default=False)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(default=list)
    grant_types: Mapped[list[str]] = mapped_column(default=list)
    scopes: Mapped[list[str]] = mapped_column(default=list)
    purpose: Mapped[str] = mapped_column(Text, default="")
    purpose_en: Mapped[str] = mapped_column(Text, default="")
    # RFC 7591 §2: the service's home page; where a resident is sent back after
    # signing in when they return to a finished sign-in (idp.interaction.pages).
    client_uri: Mapped[str | None] = mapped_column(String(500))
    policy_uri: Mapped[str | None] = mapped_column(String(500))
    tos_uri: Mapped[str | None] = mapped_column(String(500))
    jwks: Mapped[dict[str, Any] | None]
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(10))
    # OIDC Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    # RFC 8935: where Security Event Tokens (RFC 8417) about the company's
    # residents are pushed (docs/security-events.md); None: nothing is sent.
    event_receiver_uri: Mapped[str | None] = mapped_column(String(500))
    # Whether the consortium lets this client receive verified_claims
    # (OpenID Connect for Identity Assurance 1.0), e.g. under its contract.
    verified_claims_allowed: Mapped[bool] = mapped_column(default=False,
                                                          server_default=false())
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None]

    company: Mapped[Company] = relationship(back_populates="clients", lazy="joined")

    # ---- state ---------------------------------------------------------
    @property
    def client_id(self) -> str:
        return self.id

    @property
    def is_active(self) -> bool:
        """A client works only while it is not revoked and its company is active."""
        return self.revoked_at is None and self.company.is_active

    @property
    def client_metadata(self) -> ClientMetadata:
        """RFC 7591 metadata, as Authlib's endpoints read it (``.get(name)``)."""
        return ClientMetadata(self)

    # ---- Authlib's ClientMixin interface -------------------------------
    def get_client_id(self) -> str:
        return self.id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous single registration may stand in for a missing
        # redirect_uri (RFC 6749 §3.1.2.3).
        if len(self.redirect_uris) == 1:
            return self.redirect_uris[0]
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """The requested scopes if all are registered for this client, else None."""
        if not scope:
            return ""
        requested = scope.strip().split(" ")  # Authlib's scope_to_list
        if not set(requested) <= set(self.scopes):
            return None
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match, no prefix or wildcard (RFC 9700 §4.1.3).
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.matches(client_secret, self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint == "introspection" and self.is_public:
            return False
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types
