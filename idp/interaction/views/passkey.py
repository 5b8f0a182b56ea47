"""Signing in with a passkey (``/login/passkey``): the login page's button and its
autofill ask for options, the browser signs the challenge with a discoverable
credential, and the answer starts the session like a password would.

- ``POST /login/passkey/options`` → ``{"challenge": id, "options": {...}}``;
- ``POST /login/passkey`` with ``{"challenge", "credential", "interaction", "next"}``
  → ``{"redirect": url}`` (200), or ``{"error", "message"}`` (400/401/429).

Both count towards the login page's per-address limit (``login_address_limit``);
wrong answers for one passkey are slowed like wrong passwords for one address
(``idp.security.throttle``) and audited as ``resident:login:failure``
(``idp.accounts.passkeys.sign_in``). A passkey is two factors (possession and the
authenticator's user verification), so no TOTP code is asked afterwards; the
session's ``amr`` says which passkey it was (RFC 8176).
"""

from __future__ import annotations

from flask import jsonify
from flask import request
from flask_babel import gettext as _

from idp.accounts import passkeys
from idp.extensions import commit_on_error
from idp.extensions import limiter
from idp.interaction import signin
from idp.interaction.views import bp
from idp.interaction.views.login import _login_address_limit
from idp.interaction.views.login import safe_next
from idp.security import passkeys as webauthn
from idp.security import throttle


def _body() -> dict:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _refused(message: str, status: int, error: str):
    return jsonify(error=error, message=message), status


@bp.post("/login/passkey/options")
@limiter.limit(_login_address_limit, error_message="too many sign-in attempts")
def passkey_options():
    """A fresh single-use challenge for ``navigator.credentials.get``."""
    challenge_id, options = passkeys.begin_sign_in()
    return jsonify(challenge=challenge_id, options=webauthn.json_object(options))


@bp.post("/login/passkey")
@limiter.limit(_login_address_limit, error_message="too many sign-in attempts")
def passkey_sign_in():
    """Check the signed challenge and start the session."""
    body = _body()
    credential = body.get("credential")
    if not isinstance(credential, dict):
        return _refused(_("The passkey did not answer. Please try again."), 400,
                        "invalid_request")
    key = "passkey:" + webauthn.credential_id_of(credential) \
        if isinstance(credential.get("id"), str) else None
    wait = throttle.retry_after(key) if key else None
    if wait is not None:
        response, status = _refused(
            _("Too many attempts. Please wait %(seconds)s seconds and try again.",
              seconds=wait), 429, "slow_down")
        response.headers["Retry-After"] = str(wait)
        return response, status
    try:
        resident, amr = passkeys.sign_in(body.get("challenge"), credential)
    except passkeys.PasskeyError as error:
        if key:
            throttle.failed(key)
        commit_on_error()  # keep the audit record of the failure
        if error.reason == "challenge":
            return _refused(_("The sign-in took too long. Please try again."), 400,
                            "expired")
        return _refused(_("This passkey could not be used to sign in. Use another "
                          "passkey or your password."), 401, "access_denied")
    throttle.succeeded(key)
    uid = body.get("interaction") if isinstance(body.get("interaction"), str) else None
    next_url = safe_next(body.get("next") if isinstance(body.get("next"), str) else None)
    response = signin.complete(resident, uid or None, next_url, amr)
    return jsonify(redirect=response.location)
