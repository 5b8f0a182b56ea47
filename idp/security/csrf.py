"""Cross-site request forgery: one mechanism, and single-use forms built beside it.

The mechanism is Flask-WTF's ``CSRFProtect`` (``idp.extensions.csrf``): every
browser form carries ``csrf_token``, a signed value bound to the browser's
session, and every POST is checked before its view runs. A failed check
raises ``CSRFError`` and gets one answer, "The form has expired"
(``idp.errors.form_expired``); the admin console audits it first
(``admin:form:rejected``, reason ``csrf``).

- Endpoints meant to be posted cross-site are exempt (``@csrf.exempt``): the
  OAuth protocol endpoints and the bearer-token APIs, which no cookie
  authenticates.
- A view that is cross-site only sometimes is exempt and calls the same
  check itself, ``csrf.protect()``:
  RP-initiated logout is a relying party's cross-site request when it brings
  an ``id_token_hint`` of this session, and our own confirmation form
  otherwise.

Single-use forms (the admin console) are not a second CSRF check: the CSRF
token already proves the post comes from our page. Their one-time token —
stored as a digest, bound to the console session, consumed by a conditional
UPDATE — makes a replayed post (a double submit, the back button, a captured
request) change nothing. ``issue`` and ``consume`` take the token table and
its owner column, so the console keeps its own rows (``AdminFormToken``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from idp import secrets
from idp.db import utcnow
from idp.extensions import db


def issue(owner: InstrumentedAttribute, owner_id: Any) -> str:
    """A new single-use form token for this owner (a console session); only its digest
    is stored, in ``owner``'s table (columns ``digest``, ``used_at``)."""
    token = secrets.token(24)
    db.session.add(owner.class_(digest=secrets.digest(token), **{owner.key: owner_id}))
    return token


def consume(owner: InstrumentedAttribute, owner_id: Any, value: str | None) -> str | None:
    """Use up a form token; None if it was good, else ``missing``, ``replayed`` (used
    before, by this owner) or ``invalid`` (unknown, or another owner's)."""
    if not isinstance(value, str) or not value:
        return "missing"
    if len(value) > 100:
        return "invalid"
    model = owner.class_
    digest = secrets.digest(value)
    used = db.session.execute(
        update(model)
        .where(model.digest == digest, owner == owner_id, model.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if used == 1:
        return None
    known = db.session.scalar(select(owner).where(model.digest == digest))
    return "replayed" if known == owner_id else "invalid"
