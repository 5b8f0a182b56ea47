"""idp.security.passkeys: py_webauthn with the relying party fixed by the issuer.

py_webauthn's own test vectors (tests/test_verify_authentication_response.py, made by
real authenticators for http://localhost:5000) and a software authenticator
(tests/helpers/authenticator.py) that signs with ``cryptography``."""

from __future__ import annotations

import json

import pytest

from idp.security import passkeys
from idp.security.passkeys import PasskeyError
from tests.helpers.authenticator import SoftAuthenticator

# py_webauthn's RSA vector: user verified, counter 0 → 1, origin http://localhost:5000.
VECTOR = {
    "id": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
    "rawId": "ZoIKP1JQvKdrYj1bTUPJ2eTUsbLeFkv-X5xJQNr4k6s",
    "response": {
        "authenticatorData": "SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ",
        "clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0IiwiY2hhbGxlbmdlIjoiaVBtQWkxUHAxWEw2b0FncTNQV1p0WlBuWmExekZVRG9HYmFRMF9LdlZHMWxGMnMzUnRfM280dVN6Y2N5MHRtY1RJcFRUVDRCVTFULUk0bWFhdm5kalEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9",  # noqa: E501
        "signature": "iOHKX3erU5_OYP_r_9HLZ-CexCE4bQRrxM8WmuoKTDdhAnZSeTP0sjECjvjfeS8MJzN1ArmvV0H0C3yy_FdRFfcpUPZzdZ7bBcmPh1XPdxRwY747OrIzcTLTFQUPdn1U-izCZtP_78VGw9pCpdMsv4CUzZdJbEcRtQuRS03qUjqDaovoJhOqEBmxJn9Wu8tBi_Qx7A33RbYjlfyLm_EDqimzDZhyietyop6XUcpKarKqVH0M6mMrM5zTjp8xf3W7odFCadXEJg-ERZqFM0-9Uup6kJNLbr6C5J4NDYmSm3HCSA6lp2iEiMPKU8Ii7QZ61kybXLxsX4w4Dm3fOLjmDw",  # noqa: E501
        "userHandle": "T1RWa1l6VXdPRFV0WW1NNVlTMDBOVEkxTFRnd056Z3RabVZpWVdZNFpEVm1ZMk5p",
    },
    "type": "public-key",
    "clientExtensionResults": {},
}
VECTOR_CHALLENGE = passkeys.from_base64url(
    "iPmAi1Pp1XL6oAgq3PWZtZPnZa1zFUDoGbaQ0_KvVG1lF2s3Rt_3o4uSzccy0tmcTIpTTT4BU1T-I4maavndjQ")
VECTOR_KEY = passkeys.from_base64url(
    "pAEDAzkBACBZAQDfV20epzvQP-HtcdDpX-cGzdOxy73WQEvsU7Dnr9UWJophEfpngouvgnRLXaEUn_d8HGkp_HIx8rrpkx4BVs6X_B6ZjhLlezjIdJbLbVeb92BaEsmNn1HW2N9Xj2QM8cH-yx28_vCjf82ahQ9gyAr552Bn96G22n8jqFRQKdVpO-f-bvpvaP3IQ9F5LCX7CUaxptgbog1SFO6FI6ob5SlVVB00lVXsaYg8cIDZxCkkENkGiFPgwEaZ7995SCbiyCpUJbMqToLMgojPkAhWeyktu7TlK6UBWdJMHc3FPAIs0lH_2_2hKS-mGI1uZAFVAfW1X-mzKL0czUm2P1UlUox7IUMBAAE")  # noqa: E501


ISSUER = "http://localhost:5000"


def test_rp_id_and_origin_come_from_the_issuer():
    """Test that the RP id is the issuer's host and the origin its scheme, host and port."""
    assert passkeys.rp_id(ISSUER) == "localhost"
    assert passkeys.origin(ISSUER) == "http://localhost:5000"
    assert passkeys.rp_id("https://id.machi.example.jp/") == "id.machi.example.jp"
    assert passkeys.origin("https://id.machi.example.jp:8443/") == \
        "https://id.machi.example.jp:8443"


def test_the_librarys_vector_verifies_for_our_origin():
    """Test that py_webauthn's RSA assertion vector passes with the issuer's origin."""
    asserted = passkeys.verify_authentication(ISSUER, VECTOR, VECTOR_CHALLENGE, VECTOR_KEY, 0)
    assert asserted.sign_count == 1
    assert asserted.user_verified is True
    assert asserted.multi_device is False


def test_the_librarys_vector_is_refused_for_another_issuer():
    """Test that the same assertion fails when the issuer (so the origin) differs."""
    with pytest.raises(PasskeyError) as error:
        passkeys.verify_authentication("https://localhost", VECTOR, VECTOR_CHALLENGE,
                                       VECTOR_KEY, 0)
    assert error.value.reason == "invalid_assertion"


def test_the_librarys_vector_is_refused_when_the_counter_did_not_grow():
    """Test that a counter at or below the stored one (a cloned key) is refused."""
    with pytest.raises(PasskeyError) as error:
        passkeys.verify_authentication(ISSUER, VECTOR, VECTOR_CHALLENGE, VECTOR_KEY, 1)
    assert error.value.reason == "counter"


def test_the_librarys_vector_is_refused_for_another_challenge():
    """Test that a response to another challenge is refused."""
    with pytest.raises(PasskeyError):
        passkeys.verify_authentication(ISSUER, VECTOR, b"x" * 32, VECTOR_KEY, 0)


def _registered(backup_eligible=False):
    authenticator = SoftAuthenticator(origin="http://localhost:5000",
                                      backup_eligible=backup_eligible,
                                      backed_up=backup_eligible)
    challenge = passkeys.new_challenge()
    options = passkeys.registration_options(ISSUER, challenge, b"RESIDENT", "a@example.jp",
                                            "a@example.jp", [])
    made = passkeys.verify_registration(ISSUER, authenticator.register(options), challenge)
    return authenticator, made


def test_registration_options_ask_for_a_discoverable_verified_credential():
    """Test the creation options: rp id, resident key and user verification required."""
    options = json.loads(passkeys.registration_options(
        ISSUER, b"c" * 32, b"RESIDENT", "a@example.jp", "a@example.jp", [b"old"]))
    assert options["rp"] == {"id": "localhost", "name": "Machi ID"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["excludeCredentials"][0]["id"] == "b2xk"


def test_a_soft_authenticator_registers_and_signs_in():
    """Test attestation "none" then an assertion: the counter and flags come back."""
    authenticator, made = _registered()
    challenge = passkeys.new_challenge()
    options = passkeys.authentication_options(ISSUER, challenge)
    asserted = passkeys.verify_authentication(ISSUER, authenticator.assert_(options), challenge,
                                              made.public_key, made.sign_count)
    assert json.loads(options)["allowCredentials"] == []
    assert made.multi_device is False and made.transports == ["internal"]
    assert asserted.sign_count == 1 and asserted.user_verified
    assert passkeys.amr(asserted.multi_device, asserted.user_verified) == ["hwk", "user", "mfa"]


def test_a_synced_passkey_is_a_software_key():
    """Test that a backup-eligible passkey signs in as ``swk``."""
    _, made = _registered(backup_eligible=True)
    assert made.multi_device and made.backed_up
    assert passkeys.amr(True, True) == ["swk", "user", "mfa"]


@pytest.mark.parametrize("change", ["origin", "rp_id", "no_uv"])
def test_assertions_from_elsewhere_are_refused(change):
    """Test that another origin, another RP id or no user verification is refused."""
    authenticator, made = _registered()
    challenge = passkeys.new_challenge()
    options = passkeys.authentication_options(ISSUER, challenge)
    if change == "no_uv":
        authenticator.user_verified = False
    response = authenticator.assert_(
        options, origin="https://evil.example" if change == "origin" else None,
        rp_id="evil.example" if change == "rp_id" else None)
    with pytest.raises(PasskeyError):
        passkeys.verify_authentication(ISSUER, response, challenge, made.public_key, 0)


def test_registration_from_another_origin_is_refused():
    """Test that a credential created for another site is not accepted."""
    challenge = passkeys.new_challenge()
    options = passkeys.registration_options(ISSUER, challenge, b"R", "a", "a", [])
    response = SoftAuthenticator(origin="https://evil.example").register(options)
    with pytest.raises(PasskeyError) as error:
        passkeys.verify_registration(ISSUER, response, challenge)
    assert error.value.reason == "invalid_registration"


@pytest.mark.parametrize("response", ["", "{", "[]", '{"id": 1}', "x" * 20000,
                                      '{"id": "a", "response": {}}'])
def test_malformed_responses_are_refused_not_crashed(response):
    """Test that garbage gives PasskeyError, never another exception."""
    with pytest.raises(PasskeyError):
        passkeys.verify_authentication(ISSUER, response, b"c" * 32, VECTOR_KEY, 0)
    with pytest.raises(PasskeyError):
        passkeys.verify_registration(ISSUER, response, b"c" * 32)
