"""Reading the resident's forms: normalise what people type, explain what is wrong.

Japanese input arrives in many shapes: full-width digits, hyphens that are
really long-vowel marks or dashes, 〒 in front of a postal code, hiragana
where the reading should be katakana. These are normalised first (NFKC and a
few substitutions); only what is still wrong is refused, with a message per
field. The service layer (``accounts.service.validate_profile``) checks the
result again, so no route can store what the form would refuse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from flask_babel import lazy_gettext as _l

from idp.accounts.models import Gender
from idp.accounts.service import MAX_PASSWORD
from idp.accounts.service import MIN_PASSWORD
from idp.accounts.service import Profile
from idp.accounts.service import normalise_email
from idp.accounts.service import valid_email
from idp.db import utcnow

MAX_TEXT = 100
MAX_INPUT = 4096  # anything longer is cut before it is looked at
OLDEST_AGE = 130
HYPHENS = "‐‑‒–—―−ーｰ－"
KATAKANA = re.compile(r"^[\u30a1-\u30fa\u30fc\u30fb\u3000 ]+$")
POSTAL = re.compile(r"^([0-9]{3})-?([0-9]{4})$")
NAME_FIELDS = ("family_name", "given_name")
KANA_FIELDS = ("family_name_kana", "given_name_kana")
PROFILE_FIELDS = (*NAME_FIELDS, *KANA_FIELDS, "birth_year", "gender", "postal_code", "locality")


def value(form: Mapping[str, str], name: str) -> str:
    raw = form.get(name, "")
    return raw[:MAX_INPUT] if isinstance(raw, str) else ""


def _text(raw: str, kind: str = "NFC") -> str | None:
    text = unicodedata.normalize(kind, raw).strip()
    text = re.sub(r"\s+", " ", text)
    return text or None


def to_katakana(text: str) -> str:
    """Hiragana → katakana (the reading is kept in katakana, like フリガナ fields)."""
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def normalise_postal_code(raw: str) -> str | None:
    text = unicodedata.normalize("NFKC", raw).strip().lstrip("〒").strip()
    for hyphen in HYPHENS:
        text = text.replace(hyphen, "-")
    text = text.replace(" ", "")
    if not text:
        return None
    match = POSTAL.match(text)
    return f"{match.group(1)}-{match.group(2)}" if match else text


def parse_profile(form: Mapping[str, str]) -> tuple[Profile, dict[str, object]]:
    """The profile the form describes, and a message per field that is wrong."""
    errors: dict[str, object] = {}
    data: dict[str, object] = {}
    for name in NAME_FIELDS + ("locality",):
        data[name] = _text(value(form, name))
    for name in KANA_FIELDS:
        text = _text(value(form, name), "NFKC")
        text = to_katakana(text) if text else None
        data[name] = text
        if text and not KATAKANA.match(text):
            errors[name] = _l("Enter the reading in katakana.")
    for name in NAME_FIELDS + KANA_FIELDS + ("locality",):
        if data[name] and len(data[name]) > MAX_TEXT:
            errors[name] = _l("Enter at most %(max)s characters.", max=MAX_TEXT)
        elif data[name] and not data[name].isprintable():
            errors[name] = _l("Remove the characters that cannot be used.")
    year_text = unicodedata.normalize("NFKC", value(form, "birth_year")).strip()
    data["birth_year"] = None
    if year_text:
        this_year = utcnow().year
        if not year_text.isdigit() or len(year_text) != 4:
            errors["birth_year"] = _l("Enter the year as four digits, for example 1990.")
        elif not this_year - OLDEST_AGE <= int(year_text) <= this_year:
            errors["birth_year"] = _l("Enter a year between %(first)s and %(last)s.",
                                      first=this_year - OLDEST_AGE, last=this_year)
        else:
            data["birth_year"] = int(year_text)
    gender = value(form, "gender").strip()
    data["gender"] = gender or None
    if gender and gender not in set(Gender):
        errors["gender"] = _l("Choose one of the options.")
    postal = normalise_postal_code(value(form, "postal_code"))
    data["postal_code"] = postal
    if postal and not re.match(r"^[0-9]{3}-[0-9]{4}$", postal):
        errors["postal_code"] = _l("Enter the postal code as seven digits, like 060-0042.")
    return Profile(**data), errors


def typed_values(form: Mapping[str, str]) -> dict[str, str]:
    """What the resident typed, to show it again next to the error (cut to a sane length)."""
    return {name: value(form, name)[:200] for name in PROFILE_FIELDS}


def profile_form_values(profile: Profile | object) -> dict[str, str]:
    """The stored (or normalised) values, to fill the form with."""
    return {name: "" if getattr(profile, name, None) is None else str(getattr(profile, name))
            for name in PROFILE_FIELDS}


def parse_new_password(form: Mapping[str, str], email: str | None,
                       name: str = "new_password", confirm: str = "new_password_confirm"
                       ) -> tuple[str | None, dict[str, object]]:
    password = value(form, name)
    errors: dict[str, object] = {}
    if len(password) < MIN_PASSWORD:
        errors[name] = _l("Use at least %(min)s characters.", min=MIN_PASSWORD)
    elif len(form.get(name, "")) > MAX_PASSWORD:
        errors[name] = _l("Use at most %(max)s characters.", max=MAX_PASSWORD)
    elif email and password.strip().lower() == normalise_email(email):
        errors[name] = _l("Do not use your email address as the password.")
    # Checked apart from the rules above, so both problems are told at once.
    if value(form, confirm) != password:
        errors[confirm] = _l("The two passwords do not match.")
    return (None if errors else password), errors


def parse_email(form: Mapping[str, str], name: str = "email"
                ) -> tuple[str | None, dict[str, object]]:
    raw = form.get(name, "")
    email = normalise_email(unicodedata.normalize("NFKC", raw[:MAX_INPUT]))
    if not email:
        return None, {name: _l("Enter your email address.")}
    if len(raw) > 254 or not valid_email(email):
        return None, {name: _l("Enter an email address like hanako@example.jp.")}
    return email, {}
