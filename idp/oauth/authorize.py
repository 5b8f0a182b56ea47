"""The authorization endpoint's protocol half (RFC 6749 §4.1, OIDC Core §3.1.2).

Authlib validates the request (client, exact redirect URI, response_type,
scope, PKCE — S256, required for public clients —, nonce, prompt), issues the
code and answers errors. Which steps the resident must go through first (the
client still connected, signed in, second factor, terms, consent) is the
interaction's table (``idp.interaction.policy``), run by
``idp.interaction.flow``; this module never renders a page and never knows
their addresses. When the request cannot be answered at a verified redirect
URI it raises ``Refused`` and the interaction shows the page.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError
from authlib.oidc.core.errors import InteractionRequiredError
from authlib.oidc.core.errors import LoginRequiredError
from flask import Request
from flask import current_app
from flask import request
from werkzeug.test import EnvironBuilder

from idp import config
from idp import inputs
from idp.access.models import BrowserSession
from idp.accounts.models import Resident
from idp.clients import service as clients
from idp.db import utcnow
from idp.oauth import assurance

# The OAuth errors a request gets when the resident cannot be asked (prompt=none,
# OIDC Core §3.1.2.6), by the name the interaction policy gives them.
CANNOT_INTERACT = {
    "login_required": LoginRequiredError,
    "interaction_required": InteractionRequiredError,
    "consent_required": ConsentRequiredError,
}


class Refused(Exception):
    """The request cannot be answered at a verified redirect URI (unknown client,
    unverified redirect URI, junk): the resident gets a page, never a redirect.
    ``detail`` is the protocol's own words for the service's developers, if any."""

    def __init__(self, detail: str | None = None):
        super().__init__(detail)
        self.detail = detail


class Answered(Exception):
    """The protocol answered the client itself (an error at the verified redirect
    URI, with ``iss``); ``response`` is that answer."""

    def __init__(self, response):
        super().__init__("answered")
        self.response = response


@dataclass
class Validated:
    """A request Authlib has validated, with what the consent screen asks about."""

    grant: object
    client: object
    requested: list[str]


def _server():
    return current_app.extensions["idp.oauth"]


def rebuild(query: str) -> Request:
    """The stored authorization request as a request object Authlib can read."""
    settings = config.settings()
    env = EnvironBuilder(method="GET", base_url=settings.issuer, path="/authorize",
                         query_string=query).get_environ()
    return Request(env)


def error_response(error: OAuth2Error):
    """Redirect to the client when its redirect URI was verified, else raise ``Refused``."""
    if error.redirect_uri:
        server = _server()
        response = server.handle_error_response(None, error)
        current_app.extensions["idp.oauth.iss"].add_issuer_parameter(server, response)
        return response
    raise Refused(f"{error.error}: {error.description or ''}")


def refuse_bad_input(error):
    """A parameter refused by ``idp.inputs`` (NUL, lone surrogate, overlong), RFC 6749
    §4.1.2.1: ``Refused`` (a page) when the client or its redirect URI is missing, invalid
    or itself refused (never redirect then); otherwise ``invalid_request`` to the verified
    redirect URI. A refused ``state`` gets the page too: we do not echo a value we refused."""
    args = request.args
    limit = config.settings().max_input_length
    trusted = ("client_id", "redirect_uri", "state")
    if error.field is None or any(
            inputs.problem(value, limit) for name in trusted for value in args.getlist(name)):
        raise Refused()
    client = clients.find_client(args.get("client_id"))
    if client is None or not client.is_active:
        raise Refused()
    redirect_uri = args.get("redirect_uri") or client.get_default_redirect_uri()
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        raise Refused()
    return error_response(InvalidRequestError(error.description, redirect_uri=redirect_uri,
                                              state=args.get("state")))


def prompts(args) -> list[str]:
    """The ``prompt`` values of a request (OIDC Core §3.1.2.1)."""
    return (args.get("prompt") or "").split()


def acr_values(args) -> list[str]:
    """The space-separated ``acr_values`` of a request (OIDC Core §3.1.2.1)."""
    return (args.get("acr_values") or "")[:500].split()


def login_satisfies(args, row: BrowserSession | None, fresh: bool) -> bool:
    """True when the current sign-in satisfies ``prompt=login`` and ``max_age``;
    ``fresh``: the resident signed in for this very request. Raises ValueError
    for a ``max_age`` that is not a non-negative integer."""
    if row is None:
        return False
    if fresh:
        return True
    if "login" in prompts(args):
        return False
    max_age = _max_age(args)
    return max_age is None or utcnow() - row.auth_time <= dt.timedelta(seconds=max_age)


def _max_age(args) -> int | None:
    raw = args.get("max_age")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise ValueError(raw)
    return int(raw)


def validate(source: Request, resident: Resident | None, bad_max_age: bool = False) -> Validated:
    """Authlib's validation of the request for ``resident`` (None: nobody signed in
    yet). Raises ``Answered`` (an error at the verified redirect URI) or ``Refused``."""
    args = source.args
    with _answering(args):
        grant = _server().get_consent_grant(request=source, end_user=resident)
        if bad_max_age:
            raise InvalidRequestError("'max_age' must be a non-negative integer.",
                                      redirect_uri=grant.redirect_uri, state=args.get("state"))
        client = grant.request.client
        if resident is None:
            return Validated(grant, client, [])
        # The scopes, plus "verified_claims" when asked for (idp.oauth.assurance).
        requested = assurance.consent_items(scope_to_list(grant.request.scope or ""),
                                            grant.request.payload.data, client, resident)
        return Validated(grant, client, requested)


def cannot_interact(validated: Validated, error: str, args):
    """The answer to a request that needs the resident under ``prompt=none``."""
    with _answering(args):
        raise CANNOT_INTERACT[error](redirect_uri=validated.grant.redirect_uri,
                                     state=args.get("state"))


@contextmanager
def _answering(args):
    """Turn what Authlib raises into ``Answered`` or ``Refused``."""
    try:
        yield
    except OAuth2Error as error:
        error.state = args.get("state")
        raise Answered(error_response(error)) from None
    except ValueError:
        # Authlib refuses to build an error whose description would echo
        # characters an error_description cannot carry: the request is junk.
        raise Refused() from None


def issue_code(grant, resident: Resident, row: BrowserSession | None,
               consented: set[str] | None = None):
    """The code for ``grant``; ``consented``: the items of the consent in force as the
    policy's consent check read them in this request (None: the grant reads them)."""
    grant.request.browser_session = row
    grant.request.consented = consented
    return _server().create_authorization_response(request=grant.request, grant_user=resident,
                                                   grant=grant)


def deny(grant):
    """``access_denied`` to the client: the resident said no."""
    return _server().create_authorization_response(request=grant.request, grant_user=None,
                                                   grant=grant)
