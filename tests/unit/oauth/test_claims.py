"""Scope → claims: what each consented scope releases about a resident."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from idp import scopes as registry
from idp.oauth.claims import RESIDENT_FIELDS
from idp.oauth.claims import claims_for
from idp.proofing import service as proofing

SUB = "pairwise-sub-123"


def hanako(**overrides) -> SimpleNamespace:
    values = dict(family_name="札幌", given_name="花子", family_name_kana="サッポロ",
                  given_name_kana="ハナコ", birth_year=1990, gender="female",
                  email="hanako@example.jp", email_verified=True,
                  postal_code="060-0042", locality="札幌市中央区")
    values.update(overrides)
    return SimpleNamespace(**values)


def test_openid_alone_releases_only_sub():
    """Test that the openid scope releases the pairwise sub and nothing else."""
    assert claims_for(hanako(), ["openid"], SUB) == {"sub": SUB}


def test_name_scope_releases_name_and_reading():
    """Test that the name scope releases the full name, its parts and their kana readings."""
    claims = claims_for(hanako(), ["openid", "name"], SUB)
    assert claims == {
        "sub": SUB,
        "name": "札幌 花子",
        "family_name": "札幌",
        "given_name": "花子",
        "family_name#ja-Kana-JP": "サッポロ",
        "given_name#ja-Kana-JP": "ハナコ",
    }


def test_birth_year_scope_releases_year_only_birthdate():
    """Test that birth_year releases birthdate as the four-digit year alone."""
    claims = claims_for(hanako(), ["openid", "birth_year"], SUB)
    assert claims == {"sub": SUB, "birthdate": "1990"}


def test_gender_scope_releases_gender():
    """Test that the gender scope releases gender."""
    assert claims_for(hanako(), ["openid", "gender"], SUB) == {"sub": SUB, "gender": "female"}


def test_email_scope_releases_email_and_verified_flag():
    """Test that the email scope releases email and email_verified as a bool."""
    claims = claims_for(hanako(), ["openid", "email"], SUB)
    assert claims == {"sub": SUB, "email": "hanako@example.jp", "email_verified": True}


@pytest.mark.parametrize("stored", [0, None, False])
def test_email_verified_is_always_a_bool(stored):
    """Test that a falsy stored email_verified is released as False, not 0 or null."""
    claims = claims_for(hanako(email_verified=stored), ["email"], SUB)
    assert claims["email_verified"] is False


def test_postal_code_scope_releases_address_without_street():
    """Test that postal_code releases address with postal_code and locality only."""
    claims = claims_for(hanako(), ["openid", "postal_code"], SUB)
    assert claims == {"sub": SUB,
                      "address": {"postal_code": "060-0042", "locality": "札幌市中央区"}}


def test_unconsented_scopes_release_nothing_but_sub():
    """Test that profile data is left out when its scope was not consented."""
    claims = claims_for(hanako(), ["openid", "offline_access", "touch_events"], SUB)
    assert claims == {"sub": SUB}


def test_all_scopes_release_every_claim():
    """Test that every profile scope together releases the union of their claims."""
    claims = claims_for(hanako(), ["openid", "name", "birth_year", "gender", "email",
                                   "postal_code"], SUB)
    assert set(claims) == {"sub", "name", "family_name", "given_name", "family_name#ja-Kana-JP",
                           "given_name#ja-Kana-JP", "birthdate", "gender", "email",
                           "email_verified", "address"}


def test_empty_profile_values_are_omitted():
    """Test that a resident with no profile data releases no null or empty claims."""
    empty = hanako(family_name=None, given_name=None, family_name_kana=None,
                   given_name_kana=None, birth_year=None, gender=None,
                   postal_code=None, locality=None)
    claims = claims_for(empty, ["openid", "name", "birth_year", "gender", "postal_code"], SUB)
    assert claims == {"sub": SUB}


def test_partial_name_gives_name_from_the_known_part():
    """Test that with only a family name, name is that part and missing parts are omitted."""
    claims = claims_for(hanako(given_name=None, given_name_kana=None), ["name"], SUB)
    assert claims["name"] == "札幌"
    assert "given_name" not in claims
    assert "given_name#ja-Kana-JP" not in claims


def test_partial_address_omits_the_missing_part():
    """Test that an address without locality carries only the postal code."""
    claims = claims_for(hanako(locality=None), ["postal_code"], SUB)
    assert claims["address"] == {"postal_code": "060-0042"}


def test_scopes_may_be_given_as_a_set():
    """Test that scopes given as a set behave like a list."""
    assert claims_for(hanako(), {"openid", "gender"}, SUB) == {"sub": SUB, "gender": "female"}


def test_empty_string_profile_values_are_omitted():
    """Test that empty-string profile values are left out, not released as ""."""
    blank = hanako(family_name="", given_name="", family_name_kana="", given_name_kana="",
                   gender="", postal_code="", locality="")
    claims = claims_for(blank, ["openid", "name", "gender", "postal_code"], SUB)
    assert claims == {"sub": SUB}


class OnlyFields:
    """A resident with the fields UserInfo beneath Flask reads along with the token
    (``RESIDENT_FIELDS``) and its id; reading any other field fails."""

    def __init__(self, values: SimpleNamespace) -> None:
        self._values = values

    def __getattr__(self, name: str):
        if name != "id" and name not in RESIDENT_FIELDS:
            raise AssertionError(f"a claim reads resident.{name}, not in RESIDENT_FIELDS")
        return getattr(self._values, name)


def test_claims_and_proofed_values_read_only_the_fields_userinfo_loads():
    """Test that every claim of every scope, and the values a proofing is checked against
    (verified_claims), read no field of the resident but ``RESIDENT_FIELDS``: UserInfo
    beneath Flask loads only those (``idp.oauth.tokens.resident_state_lookup``), so a
    claim reader of another field must add it there first."""
    resident = OnlyFields(hanako(id="R0000000000000000"))
    claims = claims_for(resident, list(registry.claims()), SUB)
    assert claims["email"] == "hanako@example.jp" and claims["birthdate"] == "1990"
    assert proofing.claim_values(resident)["address"] == {"postal_code": "060-0042",
                                                         "locality": "札幌市中央区"}
    with pytest.raises(AssertionError, match="password_hash"):
        resident.password_hash  # noqa: B018 - the guard itself
