"""One-time codes (TOTP, RFC 6238) for residents and admins alike.

- A secret is 160 random bits (RFC 4226 §4), base32, shown once as a QR code
  (``otpauth://`` URI) and as text for manual entry.
- A code is accepted for the current 30-second step and one step either side
  (clock drift, RFC 6238 §5.2), and only for a step later than the last one
  accepted (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt
  of the same OTP"): the same code cannot be used twice, not even within its
  window. The step is claimed with a conditional UPDATE, so two requests
  racing with one code cannot both win.

Who holds the secret and the last step differs: a resident's row or an
admin's. ``use_code`` and ``claim_step`` take the row and its last-step
column (``Resident.totp_last_counter``, ``Admin.totp_last_step``), so the
claim is written once for both. What surrounds a code — recovery codes,
lockout, audit tags — stays with each (``idp.accounts.totp``,
``idp.admin.auth``).
"""

from __future__ import annotations

import base64
import hmac
import re
import time
from typing import Any

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import or_
from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from idp.extensions import db

STEP = 30
DRIFT_STEPS = 1
CODE = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code)."""
    return pyotp.TOTP(secret, interval=STEP).provisioning_uri(name=account, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The URI as an SVG QR code in a data: URI (the CSP allows img-src data:)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def group(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def normalise_code(value: str) -> str:
    return re.sub(r"[\s-]", "", value or "")[:32]


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code equals ``code`` (within the drift window), or None."""
    code = normalise_code(code)
    if not CODE.match(code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP)
    now = time.time() if now is None else now
    current = int(now // STEP)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def claim_step(row: Any, last_step: InstrumentedAttribute, step: int) -> bool:
    """Record ``step`` as the row's last used step; False if it (or a later one) was
    used already. ``last_step`` is the row's column for it (the row has an ``id``)."""
    model = last_step.class_
    claimed = db.session.execute(
        update(model)
        .where(model.id == row.id, or_(last_step.is_(None), last_step < step))
        .values({last_step: step})
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed == 1:
        setattr(row, last_step.key, step)
    return claimed == 1


def use_code(row: Any, last_step: InstrumentedAttribute, secret: str, code: str) -> str | None:
    """Check a code against ``secret`` and use up its step: None when accepted, else
    ``bad_code`` (not a code of the window) or ``replayed`` (its step was used)."""
    step = matching_step(secret, code)
    if step is None:
        return "bad_code"
    if not claim_step(row, last_step, step):
        return "replayed"
    return None
