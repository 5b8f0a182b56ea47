"""Pairwise identifiers (OIDC Core §8.1): what a company may know us by.

The `sub` is random and stored, one per (resident, company), created at the
first release to a company, and never derived from the consortium ID or
anything else: a leaked `sub` identifies nobody anywhere else (the seed 004's
ID-translation idea).

Every other identifier a company receives (a browser session's ``sid``, a
proofing record's ``verification_process``) comes from ``per_company_id``:
the same thing gets a different value at each company, so two companies
cannot join their records on it, and no row number (how many sessions or
proofings exist) shows through. Never release a row's own id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from flask import current_app
from sqlalchemy import select

from idp import secrets
from idp.access.models import PairwiseSubject
from idp.db import dialect_insert
from idp.db import utcnow
from idp.extensions import db


def _sub_of(resident_id, company_id):
    return select(PairwiseSubject.sub).where(PairwiseSubject.resident_id == resident_id,
                                             PairwiseSubject.company_id == company_id)


def subject_sql(resident_id, company_id):
    """``existing_subject`` as a scalar subquery (NULL before the first release), for a
    column of an enclosing query: a code's redemption reads it with the code."""
    return _sub_of(resident_id, company_id).scalar_subquery()


def existing_subject(resident_id: str, company_id: str) -> str | None:
    """The resident's `sub` at this company if one was ever released, else None."""
    return db.session.scalar(_sub_of(resident_id, company_id))


def subject_for(resident_id: str, company_id: str) -> str:
    """The resident's `sub` at this company, created on first use.

    ``INSERT … ON CONFLICT DO NOTHING`` then read back, so two first releases
    racing each other agree on one value.
    """
    query = _sub_of(resident_id, company_id)
    sub = db.session.scalar(query)
    if sub is not None:
        return sub
    db.session.execute(
        dialect_insert(db.session, PairwiseSubject)
        .values(resident_id=resident_id, company_id=company_id, sub=secrets.token(24),
                created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["resident_id", "company_id"])
    )
    return db.session.scalar(query)


def per_company_id(company_id: str, kind: str, value: int | str) -> str:
    """The identifier one company sees for the ``kind`` row ``value``.

    HMAC-SHA-256 under the server secret (``secret_key``) over the kind, the
    company (the pairwise sector) and the row: stable for the company (its
    clients all see the same value, as they see the same `sub`), unrelated
    between companies, and not reversible to the row without the secret.
    Changing ``secret_key`` changes every such value.
    """
    if ":" in kind or ":" in company_id:
        raise ValueError("kind and company_id must not contain ':'")
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    mac = hmac.new(key, f"{kind}:{company_id}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode("ascii")


def export_resident(resident_id: str, names) -> dict:
    """The resident's part of a data export (``idp.privacy.export``): the `sub` each
    company knows the resident by. ``names.company`` names a company for people."""
    return {"pairwise_subjects": [
        {"company_id": p.company_id, "company": names.company(p.company_id), "sub": p.sub,
         "since": p.created_at}
        for p in db.session.scalars(select(PairwiseSubject)
                                    .where(PairwiseSubject.resident_id == resident_id)
                                    .order_by(PairwiseSubject.created_at))
    ]}
