"""IdentityProofing: one check of a resident's identity at a consortium counter.

Only what the check established is kept: which claims were verified, the
kind of document, when and by which admin. No document number is ever
recorded (a My Number may not be collected outside the uses the My Number
Act allows), and no copy of the document.

``digests`` holds, per verified claim, a digest of the value the document
showed. A claim counts as verified only while the resident's current value
still has that digest: a later change of name or address is not verified.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at


class IdentityProofing(Base):
    __tablename__ = "identity_proofings"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[str] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True)
    # Subset of ("name", "birthdate", "address"), in that order.
    claims: Mapped[list[str]]
    digests: Mapped[dict[str, str]] = mapped_column(JSON)
    evidence: Mapped[str] = mapped_column(String(32))
    verified_on: Mapped[dt.date]
    admin_id: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[created_at]
    withdrawn_at: Mapped[dt.datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(String(16))
    withdrawal_reason: Mapped[str | None] = mapped_column(String(200))
