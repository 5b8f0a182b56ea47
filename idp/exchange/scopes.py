"""The data exchange's scopes, one pair per category of registered data:

- ``registered:<category>``  a service asks to receive the category's values (the
                             draft terms' item 5), released only on the resident's
                             consent per data link (``idp.exchange.links``);
- ``contribute:<category>``  a member company's backend contributes values of the
                             category (``POST /api/registered-data``), with a
                             client_credentials token: no resident is involved.

Both exist only while the category is in use, and a company may hold either only
while a data-use contract in force names the category (``refusal``): client
registration refuses it otherwise, and so does the token endpoint when the
contract has ended or expired since.
"""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from idp import scopes
from idp.exchange import categories
from idp.exchange import contracts

RECEIVE = "registered:"
CONTRIBUTE = "contribute:"

# Item 5 of the draft terms (shared/seeds/000), after the consortium's name.
RECEIVE_DETAIL = _l("Registered data the consortium has collected from its member companies: "
                    "this item, from the companies named below.")
CONTRIBUTE_DETAIL = _l("Contribute registered data of this category about residents "
                       "the company serves.")


def category_of(name: str) -> str | None:
    for prefix in (RECEIVE, CONTRIBUTE):
        if isinstance(name, str) and name.startswith(prefix):
            return name[len(prefix):]
    return None


def _label(category) -> str:
    locale = str(get_locale() or "ja")
    return categories.label(category, locale)


def _scope(prefix: str, key: str) -> scopes.Scope:
    if prefix == RECEIVE:
        return scopes.Scope(f"{RECEIVE}{key}", _LazyLabel(key), RECEIVE_DETAIL,
                            claims=("registered_data",))
    return scopes.Scope(f"{CONTRIBUTE}{key}", _LazyLabel(key), CONTRIBUTE_DETAIL,
                        about_resident=False)


class _LazyLabel:
    """A category's label in the language of the request that renders it."""

    def __init__(self, key: str):
        self.key = key

    def __str__(self) -> str:
        category = categories.get(self.key)
        return _label(category) if category is not None else self.key

    def __eq__(self, other) -> bool:
        return isinstance(other, _LazyLabel) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


def _resolver(prefix: str):
    def resolve(name: str) -> scopes.Scope | None:
        category = categories.get(name[len(prefix):])
        return _scope(prefix, category.key) if category is not None else None
    return resolve


def _offered(prefix: str):
    def offered():
        return [_scope(prefix, key) for key in categories.keys_in_use()]
    return offered


def _refusal(company_id: str, name: str) -> str | None:
    key = category_of(name)
    try:
        contracts.require(company_id, key)
    except contracts.ContractRefused as refused:
        return refused.reason
    return None


FAMILIES = (
    scopes.ScopeFamily(RECEIVE, _resolver(RECEIVE), _offered(RECEIVE), _refusal),
    scopes.ScopeFamily(CONTRIBUTE, _resolver(CONTRIBUTE), _offered(CONTRIBUTE), _refusal),
)


def register() -> None:
    """Make the families known to the scope registry (once per process)."""
    for family in FAMILIES:
        scopes.register_family(family)
