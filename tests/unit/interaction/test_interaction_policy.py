"""The interaction policy is one ordered table, read the same way by the code
flow and the device flow (idp.interaction.policy)."""

from __future__ import annotations

from types import SimpleNamespace

from idp.interaction import policy

ACTIVE = SimpleNamespace(is_active=True)
DISCONNECTED = SimpleNamespace(is_active=False)


def test_the_checks_run_in_the_documented_order():
    assert [check.name for check in policy.CHECKS] == [
        "client_still_connected", "signed_in", "second_factor", "phishing_resistant",
        "terms_accepted", "consent"]
    assert policy.BEFORE_VALIDATION + policy.AFTER_VALIDATION == policy.CHECKS


def test_a_disconnected_client_stops_before_anything_else():
    context = policy.Context(client=DISCONNECTED)
    assert policy.first_unmet(context) is policy.CLIENT_STILL_CONNECTED


def test_nobody_signed_in_is_sent_to_the_login_page():
    unmet = policy.first_unmet(policy.Context(client=ACTIVE))
    assert unmet is policy.SIGNED_IN
    assert (unmet.step, unmet.cannot_interact) == ("login", "login_required")


def test_the_second_factor_is_asked_only_between_the_password_and_the_code():
    with_totp = SimpleNamespace(totp_enabled=True)
    without = SimpleNamespace(totp_enabled=False)
    only = (policy.SECOND_FACTOR,)
    assert policy.first_unmet(policy.Context(client=None, password_passed=with_totp),
                              only) is policy.SECOND_FACTOR
    assert policy.first_unmet(policy.Context(client=None, password_passed=without), only) is None
    assert policy.first_unmet(policy.Context(client=None, resident=with_totp, signed_in=True),
                              only) is None


def test_prompt_none_answers_name_the_oidc_errors():
    assert policy.TERMS_ACCEPTED.cannot_interact == "interaction_required"
    assert policy.CONSENT.cannot_interact == "consent_required"
    assert policy.CLIENT_STILL_CONNECTED.cannot_interact is None


def test_phishing_resistant_sign_in_is_asked_only_when_it_can_be_given(monkeypatch):
    """Test acr_values phr/phrh: met by a passkey session, unmet for a password session of
    a resident with a fitting passkey, met (honestly, by the acr) for one without."""
    from idp.accounts import passkeys as resident_passkeys  # noqa: PLC0415

    resident = SimpleNamespace(id="R1")
    only = (policy.PHISHING_RESISTANT,)

    def context(amr, acr_values):
        return policy.Context(client=ACTIVE, resident=resident, signed_in=True,
                              session_amr=amr, acr_values=acr_values)

    monkeypatch.setattr(resident_passkeys, "can_satisfy", lambda rid, values: True)
    assert policy.first_unmet(context(["pwd"], []), only) is None
    assert policy.first_unmet(context(["pwd"], ["urn:other"]), only) is None
    assert policy.first_unmet(context(["pwd", "otp", "mfa"], ["phr"]),
                              only) is policy.PHISHING_RESISTANT
    assert policy.first_unmet(context(["swk", "user", "mfa"], ["phr"]), only) is None
    assert policy.first_unmet(context(["swk", "user", "mfa"], ["phrh"]),
                              only) is policy.PHISHING_RESISTANT
    assert policy.first_unmet(context(["hwk", "user", "mfa"], ["phrh"]), only) is None
    assert policy.PHISHING_RESISTANT.cannot_interact == "login_required"
    monkeypatch.setattr(resident_passkeys, "can_satisfy", lambda rid, values: False)
    assert policy.first_unmet(context(["pwd"], ["phr"]), only) is None
