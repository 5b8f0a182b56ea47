"""Which language a page speaks: ui_locales of the current interaction, then the
resident's choice, then Accept-Language; Japanese first."""

from __future__ import annotations

from flask import g
from flask import request
from flask import session

from idp.locales import DEFAULT
from idp.locales import LOCALES


def from_ui_locales(value: str | None) -> str | None:
    """The first supported tag of an OIDC ``ui_locales`` list (space-separated BCP 47)."""
    for tag in (value or "").split():
        base = tag.split("-")[0].lower()
        if base in LOCALES:
            return base
    return None


def select_locale() -> str:
    chosen = getattr(g, "ui_locale", None) or session.get("locale")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(LOCALES) or DEFAULT
