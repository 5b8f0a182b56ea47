"""Pure helpers of the resident's forms and second factor: normalisation and code handling."""

from __future__ import annotations

import pyotp
import pytest

from idp.accounts import totp
from idp.security.totp import matching_step
from idp.self_service import forms


@pytest.mark.parametrize(("typed", "expected"), [
    ("060-0042", "060-0042"), ("0600042", "060-0042"), ("〒060-0042", "060-0042"),
    ("０６０－００４２", "060-0042"), ("060ー0042", "060-0042"), ("060 0042", "060-0042"),
    ("", None), ("  ", None), ("06-00042", "06-00042"), ("060-00421", "060-00421"),
])
def test_postal_codes_are_normalised_or_left_for_refusal(typed, expected):
    """Test that the usual ways of typing a postal code become NNN-NNNN, and others stay as typed."""
    assert forms.normalise_postal_code(typed) == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("さっぽろ", "サッポロ"), ("サッポロ", "サッポロ"), ("はなこ・えみ", "ハナコ・エミ"),
    ("ゔ", "ヴ"), ("abc", "abc"),
])
def test_hiragana_becomes_katakana(typed, expected):
    """Test that readings typed in hiragana are stored in katakana."""
    assert forms.to_katakana(typed) == expected


def test_profile_parse_reports_every_bad_field_at_once():
    """Test that all wrong fields are reported together, and good ones are parsed."""
    profile, errors = forms.parse_profile({
        "family_name": " 札幌 ", "birth_year": "19x0", "postal_code": "1-2",
        "given_name_kana": "Hanako", "gender": "female"})
    assert set(errors) == {"birth_year", "postal_code", "given_name_kana"}
    assert (profile.family_name, profile.gender) == ("札幌", "female")


@pytest.mark.parametrize(("typed", "expected"), [
    ("abcd-efgh-jkmn-pqrs", "ABCDEFGHJKMNPQRS"), ("O0IL 1l2z", "0011112Z"),
])
def test_recovery_codes_are_read_in_crockford_form(typed, expected):
    """Test that separators and case do not matter, and O, I, L read as 0, 1, 1."""
    assert totp.crockford(typed) == expected


def test_only_codes_within_one_step_match():
    """Test that codes of the current step and one either side match, and older ones do not."""
    secret = pyotp.random_base32()
    now = 1_800_000_015.0
    code = pyotp.TOTP(secret)
    assert matching_step(secret, code.at(now), now) == int(now // 30)
    assert matching_step(secret, code.at(now - 30), now) == int(now // 30) - 1
    assert matching_step(secret, code.at(now + 30), now) == int(now // 30) + 1
    assert matching_step(secret, code.at(now - 60), now) is None
    assert matching_step(secret, "12345", now) is None
    assert matching_step(secret, "abcdef", now) is None
