"""WebAuthn (passkeys) through py_webauthn: options out, responses verified in.

Nothing here parses an attestation or an assertion: ``webauthn`` (py_webauthn)
does, and this module only fixes the relying party. The RP id is the issuer's
host and the one accepted origin is the issuer's scheme, host and port (every
function takes the issuer, ``config.settings().issuer``), so a passkey made here
works nowhere else and a response produced for another site is refused (WebAuthn §7.1 step 9, §7.2
step 13).

User verification is required (a PIN, fingerprint or face on the device): a
passkey is then two factors by itself, possession of the key and the user
verification, which is why a passkey sign-in skips the TOTP step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import webauthn
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers import exceptions
from webauthn.helpers.structs import AuthenticatorSelectionCriteria
from webauthn.helpers.structs import CredentialDeviceType
from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from webauthn.helpers.structs import ResidentKeyRequirement
from webauthn.helpers.structs import UserVerificationRequirement

TIMEOUT_MS = 120_000
# OpenID Connect Extended Authentication Profile ACR values: a phishing-resistant
# sign-in, and one whose key is also protected by hardware (not synced).
ACR_PHISHING_RESISTANT = "phr"
ACR_PHISHING_RESISTANT_HARDWARE = "phrh"
ACR_VALUES = (ACR_PHISHING_RESISTANT, ACR_PHISHING_RESISTANT_HARDWARE)
MAX_RESPONSE = 16_384  # a WebAuthn response is a few kilobytes; refuse anything bigger


class PasskeyError(ValueError):
    """A WebAuthn response was refused; ``reason`` says why (for the audit)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def rp_id(issuer: str) -> str:
    return urlsplit(issuer).hostname or "localhost"


def origin(issuer: str) -> str:
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


def json_object(options_json: str) -> dict:
    """Options made by ``*_options`` as a dict, to embed in a JSON answer."""
    return json.loads(options_json)


def from_base64url(value: str) -> bytes:
    return base64url_to_bytes(value)


def new_challenge() -> bytes:
    return webauthn.helpers.generate_challenge()


def registration_options(issuer: str, challenge: bytes, user_handle: bytes, user_name: str,
                         display_name: str, exclude: list[bytes]) -> str:
    """``PublicKeyCredentialCreationOptions`` as JSON: a discoverable credential
    (resident key required, so sign-in needs no address) with user verification."""
    options = webauthn.generate_registration_options(
        rp_id=rp_id(issuer), rp_name="Machi ID", user_id=user_handle, user_name=user_name,
        user_display_name=display_name, challenge=challenge, timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude])
    return webauthn.options_to_json(options)


def authentication_options(issuer: str, challenge: bytes, allow: list[bytes] | None = None) -> str:
    """``PublicKeyCredentialRequestOptions`` as JSON; without ``allow`` the browser
    offers every passkey it holds for this site (discoverable credentials)."""
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(issuer), challenge=challenge, timeout=TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow or []],
        user_verification=UserVerificationRequirement.REQUIRED)
    return webauthn.options_to_json(options)


@dataclass(frozen=True)
class Registered:
    credential_id: str  # base64url
    public_key: bytes
    sign_count: int
    aaguid: str
    multi_device: bool  # backup eligible (BE): a synced passkey
    backed_up: bool  # backup state (BS)
    transports: list[str]


@dataclass(frozen=True)
class Asserted:
    credential_id: str
    sign_count: int
    multi_device: bool
    backed_up: bool
    user_verified: bool


def _load(response: str | dict) -> dict:
    if isinstance(response, str):
        if len(response) > MAX_RESPONSE:
            raise PasskeyError("too_large")
        try:
            response = json.loads(response)
        except ValueError as error:
            raise PasskeyError("malformed") from error
    if not isinstance(response, dict) or not isinstance(response.get("id"), str) \
            or not isinstance(response.get("response"), dict):
        raise PasskeyError("malformed")
    return response


def credential_id_of(response: str | dict) -> str:
    """The credential id a response claims (not yet verified): to find its key."""
    return _load(response)["id"][:1400]


def user_handle_of(response: str | dict) -> bytes | None:
    """The user handle an assertion carries, if any: WebAuthn §7.2 step 6 asks the RP to
    check it names the credential's owner (the library does not know the owner)."""
    handle = _load(response)["response"].get("userHandle")
    if not handle:
        return None
    try:
        return base64url_to_bytes(handle) if isinstance(handle, str) else b"\x00invalid"
    except ValueError:
        return b"\x00invalid"


def verify_registration(issuer: str, response: str | dict, challenge: bytes) -> Registered:
    data = _load(response)
    try:
        verified = webauthn.verify_registration_response(
            credential=data, expected_challenge=challenge, expected_rp_id=rp_id(issuer),
            expected_origin=origin(issuer), require_user_verification=True)
    except (exceptions.InvalidRegistrationResponse, exceptions.InvalidCBORData,
            exceptions.InvalidJSONStructure, exceptions.InvalidAuthenticatorDataStructure,
            exceptions.UnsupportedPublicKeyType, exceptions.InvalidPublicKeyStructure,
            ValueError, KeyError, TypeError) as error:
        raise PasskeyError("invalid_registration") from error
    transports = data["response"].get("transports") or []
    return Registered(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        multi_device=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        transports=[t for t in transports if isinstance(t, str)][:8])


def verify_authentication(issuer: str, response: str | dict, challenge: bytes, public_key: bytes,
                          sign_count: int) -> Asserted:
    """Check an assertion against the stored key and signature counter. The library
    refuses a counter that did not grow (when either is non-zero): a cloned key."""
    data = _load(response)
    try:
        verified = webauthn.verify_authentication_response(
            credential=data, expected_challenge=challenge, expected_rp_id=rp_id(issuer),
            expected_origin=origin(issuer), credential_public_key=public_key,
            credential_current_sign_count=sign_count, require_user_verification=True)
    except exceptions.InvalidAuthenticationResponse as error:
        reason = "counter" if "sign count" in str(error) else "invalid_assertion"
        raise PasskeyError(reason) from error
    except (exceptions.InvalidCBORData, exceptions.InvalidJSONStructure,
            exceptions.InvalidAuthenticatorDataStructure, exceptions.UnsupportedPublicKeyType,
            exceptions.InvalidPublicKeyStructure, ValueError, KeyError, TypeError) as error:
        raise PasskeyError("invalid_assertion") from error
    return Asserted(
        credential_id=bytes_to_base64url(verified.credential_id),
        sign_count=verified.new_sign_count,
        multi_device=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up, user_verified=verified.user_verified)


def amr(multi_device: bool, user_verified: bool) -> list[str]:
    """RFC 8176 methods of a passkey sign-in. A passkey that can be backed up (BE flag,
    synced across devices) is a software-secured key, ``swk``: its private key leaves
    the device. One that cannot is bound to its authenticator, ``hwk`` (we do not ask
    for attestation, so this is what the authenticator says of itself). ``user`` and
    ``mfa`` only when the authenticator verified the user (always, as we require it)."""
    methods = ["swk" if multi_device else "hwk"]
    if user_verified:
        methods += ["user", "mfa"]
    return methods


def is_phishing_resistant(amr: list[str] | None) -> bool:
    """Whether a sign-in's methods include a passkey (bound to our origin, so a
    look-alike site cannot relay it)."""
    return bool(amr) and ("hwk" in amr or "swk" in amr)


def acr_of(amr: list[str] | None) -> str | None:
    """The ``acr`` a sign-in honestly earns: ``phrh`` for a device-bound passkey,
    ``phr`` for a synced one, none for a password (with or without a code)."""
    if not amr:
        return None
    if "hwk" in amr:
        return ACR_PHISHING_RESISTANT_HARDWARE
    if "swk" in amr:
        return ACR_PHISHING_RESISTANT
    return None


def satisfies(amr: list[str] | None, requested: list[str]) -> bool:
    """Whether a sign-in meets requested ACR values we know (others are ignored,
    OIDC Core §3.1.2.1: ``acr_values`` is a voluntary request)."""
    wanted = [v for v in requested if v in ACR_VALUES]
    if not wanted:
        return True
    earned = acr_of(amr)
    return earned == ACR_PHISHING_RESISTANT_HARDWARE or (
        earned == ACR_PHISHING_RESISTANT and ACR_PHISHING_RESISTANT in wanted)
