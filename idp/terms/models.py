"""TermsVersion: one published version of the consortium's terms of use."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.db import Base
from idp.db import created_at


class TermsVersion(Base):
    """A version of the terms. The current one is the newest already in effect.

    Rows are never changed after publication: a correction is a new version,
    so what a resident accepted can always be shown again as it was.
    """

    __tablename__ = "terms_versions"

    version: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(500), default="")
    # What changed, shown on the acceptance page (Japanese, English).
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_en: Mapped[str] = mapped_column(Text, default="")
    # The full text (Japanese, English) in the format of idp.terms.document. Empty
    # only on versions published before the text lived here: they show the bundled text.
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    text_en: Mapped[str] = mapped_column(Text, default="", server_default="")
    effective_at: Mapped[dt.datetime] = mapped_column(index=True)
    published_at: Mapped[created_at]
    published_by: Mapped[str | None] = mapped_column(String(100))
