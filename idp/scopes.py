"""The scope registry: every scope we know, once, and what follows from it.

One ``Scope`` entry says what a scope is: the claims it releases (OIDC Core
§5.4), how the consent screen names it (in the words of the consortium's
draft terms, "OAuth活用時における規約案", shared/seeds/000: user ID (our consortium ID); name with
reading, birth year, gender; main email address and whether it is verified;
address information — postal code and municipality), whether a resident may
untick it, whether it is about a resident at all, and — for the standard
OpenID Connect scopes — which of our finer scopes it stands for. Everything
else derives from here, so a new scope is one entry:

- client validation and the CLI (``registrable``, ``known``);
- the authorization server's unknown-scope check and the client-credentials
  refusal of resident scopes (``known``, ``about_resident``);
- reading ``profile``/``address`` as our finer scopes (``expand``);
- the consent screen's items, their order and which start unticked
  (``consent_items``, ``required``, ``opt_in``);
- claims release (``claims``) and the history's claim → item mapping;
- discovery's ``scopes_supported`` (``supported``) and ``claims_supported``
  (``supported_claims``).

Standard scopes (OIDC Core §5.4). Relying-party software asks for ``profile``
and ``address`` by default (mod_auth_openidc: ``openid profile email``). We
keep one scope per consent item so a resident can untick each, and read a
standard scope as the finer scopes it covers (``expand``, applied where a
request's ``scope`` is read, so everything after it sees only our own scopes
and the token response's ``scope`` tells the client what was granted, RFC
6749 §3.3):

- ``profile``  name (with reading), birth year, gender; the other profile
               claims (nickname, picture, website, zoneinfo, …) are not held,
               so they are never released
- ``email``    is our own scope already
- ``address``  postal code and municipality (never a street address)
- ``phone``    not supported: residents have no phone number here, so it
               stays an unknown scope and is not advertised

Families of scopes. Some scopes are not a fixed list but a prefix and a
value that comes from the database: ``registered:<category>`` and
``contribute:<category>``, one per category of registered data the consortium
keeps (``idp.exchange.scopes`` registers them at start-up). Such a family is a
``ScopeFamily``: a prefix and a ``resolve`` hook that returns the ``Scope`` for
one value (or None when the value is not a category), ``offered`` listing the
scopes it offers now (discovery, the console), and ``refusal``, why a company
may not hold one now (no data-use contract in force names the category).
``register_family`` adds it; ``lookup`` and ``known`` then accept its scopes
everywhere a fixed scope is accepted (client registration, authorization and
token requests), ``consent_items`` shows them after the fixed items, and
``supported`` lists what the family offers.

Strings are lazy so each request renders them in its own language (the
Japanese wording is in the message catalog).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Scope:
    """One scope (or, with ``requestable=False``, a consent item that is not a scope).

    - ``claims``          the claims its release carries (OIDC Core §5.4)
    - ``label``/``detail`` what the consent screen says; None for a standard
                          scope, which the screen shows as the scopes it covers
    - ``required``        a resident cannot untick it (without ``openid`` there
                          is no sign-in)
    - ``opt_in``          its box starts unticked unless the consent in force grants
                          it: a service keeping access while the resident is signed
                          out is never the default
    - ``about_resident``  it makes no sense without a resident, so it cannot be
                          asked with client_credentials
    - ``covers``          a standard scope: the finer scopes it is read as
    - ``requestable``     False for a consent item asked by other means
                          (``verified_claims``, by the ``claims`` parameter)
    """

    name: str
    label: object = None
    detail: object = None
    claims: tuple[str, ...] = ()
    required: bool = False
    opt_in: bool = False
    about_resident: bool = True
    covers: tuple[str, ...] = ()
    requestable: bool = True

    @property
    def standard(self) -> bool:
        return bool(self.covers)


@dataclass(frozen=True)
class ScopeFamily:
    """Scopes named ``<prefix><value>`` whose values come from elsewhere (the database).

    ``resolve`` returns the Scope for one full scope name, or None when the
    value is not one the family knows; ``offered`` lists the family's scopes
    as offered now (for discovery and the console). Both are called inside a
    request or an app context.
    """

    prefix: str
    resolve: Callable[[str], Scope | None]
    offered: Callable[[], Iterable[Scope]] = tuple
    # Why a company may not hold this scope now (e.g. no contract in force names the
    # category), or None when it may: client registration and token requests ask.
    refusal: Callable[[str, str], str | None] = lambda company_id, name: None


# In the order of the draft terms: the consent screen shows its items in this order.
SCOPES: tuple[Scope, ...] = (
    Scope("openid", _l("Consortium ID"),
          _l("An ID that stands for your consortium ID, different for every company."),
          claims=("sub",), required=True),
    Scope("name", _l("Name and reading"),
          _l("Your family and given name and their reading (furigana)."),
          claims=("name", "family_name", "given_name", "family_name#ja-Kana-JP",
                  "given_name#ja-Kana-JP")),
    Scope("birth_year", _l("Birth year"), _l("The year you were born (not the day)."),
          claims=("birthdate",)),
    Scope("gender", _l("Gender"), _l("The gender you registered."), claims=("gender",)),
    Scope("email", _l("Email address"),
          _l("Your main email address and whether it has been verified."),
          claims=("email", "email_verified")),
    Scope("postal_code", _l("Address information"),
          _l("Your postal code and municipality only (no street address)."),
          claims=("address",)),
    # Not a scope: asked when a client requests verified_claims (OpenID
    # Connect for Identity Assurance) and the consortium has checked the
    # resident's identity (idp.oauth.assurance, idp.proofing).
    Scope("verified_claims", _l("Verified identity information"),
          _l("That the consortium has checked the items below against an official document, "
             "with the document's kind and the date of the check (never its number)."),
          requestable=False),
    Scope("offline_access", _l("Continued access"),
          _l("The service may keep receiving the items above while you are signed out, "
             "until you withdraw consent."),
          opt_in=True),
    Scope("touch_events", _l("Touch history"),
          _l("When and which content you touch on the consortium's signage kiosks."),
          about_resident=False),
    # People-counting sensors post counts with it (client_credentials only): about no
    # resident, never on a consent screen (idp.sensors, /api/sensor-counts).
    Scope("sensor_counts", about_resident=False),
    # The standard OpenID Connect scopes, read as our finer ones (see above).
    Scope("profile", covers=("name", "birth_year", "gender")),
    Scope("address", covers=("postal_code",)),
)

_BY_NAME: dict[str, Scope] = {scope.name: scope for scope in SCOPES}
_FAMILIES: list[ScopeFamily] = []


def register_family(family: ScopeFamily) -> None:
    """Add a family of scopes (at start-up, once per prefix; again with the same family
    is a no-op, as every app a process creates registers its families)."""
    if family in _FAMILIES:
        return
    if any(f.prefix == family.prefix for f in _FAMILIES):
        raise ValueError(f"a scope family with prefix {family.prefix!r} is registered already")
    _FAMILIES.append(family)


def unregister_family(prefix: str) -> None:
    """Remove a family (tests)."""
    _FAMILIES[:] = [f for f in _FAMILIES if f.prefix != prefix]


def lookup(name: str) -> Scope | None:
    """The requestable scope of this name, fixed or of a family; None if unknown."""
    scope = _BY_NAME.get(name)
    if scope is not None:
        return scope if scope.requestable else None
    for family in _FAMILIES:
        if name.startswith(family.prefix):
            return family.resolve(name)
    return None


def own_fixed(name: str) -> bool:
    """Whether this is a fixed scope of our own (not a standard one, not a family's): one
    a client may be registered for, which every company may hold."""
    scope = _BY_NAME.get(name)
    return scope is not None and scope.requestable and not scope.standard


def refusal(company_id: str, name: str) -> str | None:
    """Why this company may not hold this scope now; None when it may (fixed scopes
    always may; a family's scope asks its family)."""
    for family in _FAMILIES:
        if name.startswith(family.prefix):
            return family.refusal(company_id, name)
    return None


def _families() -> Iterator[Scope]:
    for family in _FAMILIES:
        yield from family.offered()


def registrable() -> tuple[str, ...]:
    """The fixed scopes a client may be registered for: our own, not the standard ones
    (a client registered for ``name`` may ask ``profile``, see ``expand``)."""
    return tuple(s.name for s in SCOPES if s.requestable and not s.standard)


def known(name: str) -> bool:
    """Whether a client may be registered for (or, after ``expand``, ask) this scope:
    a fixed scope of our own or a family's, not a standard one."""
    scope = lookup(name)
    return scope is not None and not scope.standard


def offered_by_families() -> tuple[str, ...]:
    """The names of the scopes the families offer now (needs an app context)."""
    return tuple(s.name for s in _families())


def supported(families: bool = True) -> list[str]:
    """``scopes_supported`` (RFC 8414 §2): our own scopes, then the standard ones; with
    ``families`` (needs an app context: families read the database) the scopes the
    families offer now, after the fixed ones."""
    own = [*registrable(), *((s.name for s in _families()) if families else ())]
    return [*own, *standard_scopes()]


def standard_scopes() -> dict[str, tuple[str, ...]]:
    """Standard scope → the finer scopes it is read as."""
    return {s.name: s.covers for s in SCOPES if s.standard}


def is_about_resident(name: str) -> bool:
    """Whether a scope makes no sense without a resident (refused with client_credentials)."""
    scope = lookup(name)
    return scope is not None and scope.about_resident and not scope.standard


def required() -> frozenset[str]:
    """Scopes a resident cannot untick."""
    return frozenset(s.name for s in SCOPES if s.required)


def opt_in() -> frozenset[str]:
    """The scopes whose consent box starts unticked (``Scope.opt_in``)."""
    return frozenset(s.name for s in SCOPES if s.opt_in)


def consent_items(requested: Iterable[str] | None = None) -> list[Scope]:
    """What the consent screen can show, in its order: the fixed items, then the
    families'. With ``requested``, only those items, the families' in the order asked
    (resolved one by one, without listing every scope a family offers)."""
    if requested is None:
        return [*(s for s in SCOPES if s.label is not None), *_families()]
    wanted = list(dict.fromkeys(requested))
    fixed = [s for s in SCOPES if s.label is not None and s.name in wanted]
    family = [lookup(name) for name in wanted if name not in _BY_NAME]
    return [*fixed, *(s for s in family if s is not None and s.label is not None)]


def claims() -> dict[str, tuple[str, ...]]:
    """Scope → the claims its release carries (scopes that release claims only)."""
    return {s.name: s.claims for s in SCOPES if s.claims}


def supported_claims() -> list[str]:
    return sorted({c for released in claims().values() for c in released})


def expand(scope: str | None, allowed: Collection[str] | None = None) -> str | None:
    """The scope with each standard scope replaced by the finer scopes it covers.

    With ``allowed`` (the client's registered scopes), a standard scope covers
    only those of its finer scopes the client is registered for: a client
    registered for ``name`` may ask ``profile`` and gets ``name``. Scopes the
    client names itself are left for the client check to accept or refuse.
    Order is kept and duplicates dropped; ``None`` stays ``None``. (RFC 6749
    §3.3: scopes are space-delimited, case-sensitive strings.)
    """
    if scope is None:
        return None
    standard = standard_scopes()
    expanded: list[str] = []
    for item in scope.split():
        if item in standard:
            expanded.extend(s for s in standard[item] if allowed is None or s in allowed)
        else:
            expanded.append(item)
    return " ".join(dict.fromkeys(expanded))
