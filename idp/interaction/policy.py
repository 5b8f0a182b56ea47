"""The interaction policy: what a resident must go through before a client gets
an answer, as one ordered table (node-oidc-provider's interaction policy).

Both ways of asking use it, the authorization-code flow (``/authorize``,
RFC 6749 §4.1) and the device flow (``/device/confirm``, RFC 8628 §3.3):
``idp.interaction.flow`` builds a ``Context`` and asks for the first check
that is not met; the view of that check's ``step`` takes over. The first
check runs before the protocol validates the request (a disconnected client
gets its own page, not an error about an unknown client); the others after.

1. ``client_still_connected``  a revoked client or suspended company: a page
                               saying the service is no longer connected;
2. ``signed_in``               no session, ``prompt=login`` or ``max_age``
                               passed → the login page (``login_required``
                               under ``prompt=none``);
3. ``second_factor``           a resident with two-step verification gives the
                               code before any session starts
                               (``idp.interaction.signin``): met by every
                               session, unmet only between the password and
                               the code (a passkey is two factors by itself);
4. ``phishing_resistant``      ``acr_values`` asks for ``phr`` or ``phrh``
                               (idp.security.passkeys) and the session was not
                               started with such a passkey, while the resident
                               has one → the login page, passkey only
                               (``login_required`` under ``prompt=none``). A
                               resident without a fitting passkey goes on: the
                               ID token's ``acr`` then tells the client the
                               request was not met (OIDC Core §3.1.2.1,
                               ``acr_values`` is voluntary);
5. ``terms_accepted``          the consortium terms now in force → the terms
                               page (``interaction_required`` under
                               ``prompt=none``); declining there signs out;
6. ``consent``                 ``idp.consent.service.reasons_for``, or a
                               consented category of registered data with a
                               new source (``new_sources``) → the
                               consent page (``consent_required`` under
                               ``prompt=none``); the device flow always asks
                               (RFC 8628 §5.4, remote phishing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from idp.accounts import passkeys as resident_passkeys
from idp.consent import service as consent_service
from idp.exchange import links
from idp.security import passkeys
from idp.terms import service as terms


@dataclass
class Context:
    """What the checks read: who asks, who is here, what is asked."""

    client: object | None
    resident: object | None = None
    signed_in: bool = False
    password_passed: object | None = None
    requested: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    always_ask_consent: bool = False
    acr_values: list[str] = field(default_factory=list)
    session_amr: list[str] = field(default_factory=list)
    # Set by the consent check when it is met: the items of the consent in force it
    # read, which the code issued next is granted within (no second read).
    consented: set[str] | None = None


@dataclass(frozen=True)
class Check:
    """One row of the table: ``met(context)`` is False when the resident must go
    to ``step`` (or, under ``prompt=none``, the client gets ``cannot_interact``)."""

    name: str
    reason: str
    step: str
    met: Callable[[Context], bool]
    cannot_interact: str | None = None


def _client_still_connected(context: Context) -> bool:
    return context.client is None or context.client.is_active


def _signed_in(context: Context) -> bool:
    return context.signed_in and context.resident is not None


def _second_factor(context: Context) -> bool:
    # Sessions start only after the code (signin.complete); the check is unmet
    # only for a resident who passed the password and has not yet given it.
    if context.signed_in:
        return True
    waiting = context.password_passed
    return waiting is None or not waiting.totp_enabled


def _phishing_resistant(context: Context) -> bool:
    if passkeys.satisfies(context.session_amr, context.acr_values):
        return True
    return not resident_passkeys.can_satisfy(context.resident.id, context.acr_values)


def _terms_accepted(context: Context) -> bool:
    return not terms.needs_acceptance(context.resident)


def consent_reasons(context: Context) -> list[str]:
    """Why the consent page must be shown: ``idp.consent.service.reasons_for``, and
    ``new_sources`` when a category of registered data already consented has a source
    company without a data link (``idp.exchange.links.new_sources``)."""
    consent = consent_service.find(context.resident.id, context.client.id)
    reasons = consent_service.reasons_for(consent, context.requested,
                                          prompt_consent="consent" in context.prompts)
    if not reasons and links.new_sources(context.resident.id, context.client.id,
                                         context.requested):
        reasons.append("new_sources")
    context.consented = None if reasons else set(consent.scopes)
    return reasons


def _consent(context: Context) -> bool:
    if context.always_ask_consent:
        return False
    return not consent_reasons(context)


CLIENT_STILL_CONNECTED = Check(
    "client_still_connected", "the service was disconnected from the consortium",
    "disconnected", _client_still_connected)
SIGNED_IN = Check(
    "signed_in", "nobody is signed in, or the sign-in is too old for the request",
    "login", _signed_in, "login_required")
SECOND_FACTOR = Check(
    "second_factor", "the resident uses two-step verification and has not given the code",
    "second_factor", _second_factor, "login_required")
PHISHING_RESISTANT = Check(
    "phishing_resistant", "the service asks for a passkey sign-in and the resident has one",
    "passkey", _phishing_resistant, "login_required")
TERMS_ACCEPTED = Check(
    "terms_accepted", "the consortium terms in force have not been accepted",
    "terms", _terms_accepted, "interaction_required")
CONSENT = Check(
    "consent", "no consent in force covers what the service asks for",
    "consent", _consent, "consent_required")

CHECKS = (CLIENT_STILL_CONNECTED, SIGNED_IN, SECOND_FACTOR, PHISHING_RESISTANT, TERMS_ACCEPTED,
          CONSENT)
BEFORE_VALIDATION = CHECKS[:1]
AFTER_VALIDATION = CHECKS[1:]


def first_unmet(context: Context, checks: tuple[Check, ...] = CHECKS) -> Check | None:
    """The first check of ``checks``, in table order, that the context does not meet."""
    for check in checks:
        if not check.met(context):
            return check
    return None
