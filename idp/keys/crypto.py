"""Signing keys are encrypted at rest with a key-encryption key (KEK).

The KEK comes from the settings (``IDP_KEY_ENCRYPTION_KEY``, a Fernet key:
32 random bytes, URL-safe base64 — ``python -c "from cryptography.fernet
import Fernet; print(Fernet.generate_key().decode())"``) and never enters the
database, so a copy of the database cannot sign tokens. Development and tests
without one derive it from the secret key (HKDF-SHA256); production refuses to
start without an explicit KEK (``idp.config``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from idp import config


class KeyDecryptionError(RuntimeError):
    """A stored private key cannot be decrypted: the KEK is not the one it was sealed with."""


def kek_from(key_encryption_key: str, secret_key: str) -> Fernet:
    if key_encryption_key:
        return Fernet(key_encryption_key.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"machi-id signing key encryption").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _fernet() -> Fernet:
    settings = config.settings()
    return kek_from(settings.key_encryption_key, settings.secret_key)


def seal(private_jwk: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(private_jwk).encode()).decode()


def unseal(sealed: str) -> dict[str, Any]:
    try:
        return json.loads(_fernet().decrypt(sealed.encode()))
    except InvalidToken as exc:
        raise KeyDecryptionError("signing key cannot be decrypted with the configured "
                                 "key_encryption_key") from exc
