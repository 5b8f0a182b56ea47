"""Signing the audit chain's heads with the IdP's signing key (a Signed Tree Head).

``idp.audit.chain.seal`` writes one head per batch and asks a signer for its
signature; ``idp.audit.chain.verify`` asks a checker. Both live here because
the keys are a floor above the audit trail. A head is a compact JWS over the
head statement (``chain.head_statement``), ``kid`` in its header, signed by
the key that signs ES256 ID tokens now: anyone holding the published JWKS can
check a head copied out of the database.
"""

from __future__ import annotations

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from idp.extensions import db
from idp.keys import service
from idp.keys.models import SigningKey

ALG = "ES256"


def sign(statement: bytes) -> tuple[str, str]:
    """(kid, compact JWS) over ``statement`` (the first key is made if there is none)."""
    key = service.signing_key(ALG)
    token = jws.serialize_compact({"alg": key.alg, "kid": key.kid}, statement,
                                  service.private_key(key), algorithms=[key.alg])
    return key.kid, token


def check(kid: str, token: str) -> bytes | None:
    """The statement ``token`` signs, or None when its signature does not verify with the
    stored key ``kid``; LookupError when no key ``kid`` is stored any more."""
    row = db.session.get(SigningKey, kid)
    if row is None:
        raise LookupError(kid)
    key = (RSAKey if row.alg == "RS256" else ECKey).import_key(dict(row.public_jwk))
    try:
        signed = jws.deserialize_compact(token, key, algorithms=[row.alg])
    except (JoseError, ValueError):
        return None
    if signed.protected.get("kid") != kid:
        return None
    return signed.payload
