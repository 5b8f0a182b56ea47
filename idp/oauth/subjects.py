"""Pairwise subject identifiers (OIDC Core §8.1), one per (resident, company).

The `sub` is random and stored, created at the first release to a company,
and never derived from the consortium ID or anything else: a leaked `sub`
identifies nobody anywhere else (the seed 004's ID-translation idea).
"""

from __future__ import annotations

from sqlalchemy import select

from idp import secrets
from idp.db import dialect_insert
from idp.db import utcnow
from idp.extensions import db
from idp.oauth.models import PairwiseSubject


def existing_subject(resident_id: str, company_id: str) -> str | None:
    """The resident's `sub` at this company if one was ever released, else None."""
    return db.session.scalar(select(PairwiseSubject.sub).where(
        PairwiseSubject.resident_id == resident_id, PairwiseSubject.company_id == company_id))


def subject_for(resident_id: str, company_id: str) -> str:
    """The resident's `sub` at this company, created on first use.

    ``INSERT … ON CONFLICT DO NOTHING`` then read back, so two first releases
    racing each other agree on one value.
    """
    query = select(PairwiseSubject.sub).where(
        PairwiseSubject.resident_id == resident_id, PairwiseSubject.company_id == company_id
    )
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
