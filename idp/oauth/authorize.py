"""The authorization endpoint as a readable policy (RFC 6749 §4.1, OIDC Core §3.1.2).

``authorize()`` runs these checks in order; the first that fails decides:

1. ``check_client_connected``  a revoked client or suspended company gets a page
                               saying the service is no longer connected;
2. Authlib validation          client, exact redirect URI, response_type, scope,
                               PKCE (S256; required for public clients), nonce,
                               prompt — errors without a trustworthy redirect URI
                               get an HTML page, the rest a redirect with ``iss``;
3. ``check_login``             no session, ``prompt=login`` or ``max_age`` passed
                               → the login page (``login_required`` under
                               ``prompt=none``);
3a. ``check_terms``            the resident has not accepted the consortium
                               terms now in force → the terms page
                               (``interaction_required`` under ``prompt=none``);
4. ``check_consent``           ``idp.consent.service.reasons_to_ask`` → the consent
                               page (``consent_required`` under ``prompt=none``);
5. issue the code              scopes = requested ∩ consented.

A request that needs the resident is kept as an interaction
(``idp.interaction.state``) and replayed here when they are done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError
from authlib.oidc.core.errors import InteractionRequiredError
from flask import Request
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import gettext as _
from werkzeug.test import EnvironBuilder

from idp import config
from idp import inputs
from idp.accounts.models import BrowserSession
from idp.accounts.models import Resident
from idp.clients import service as clients
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.db import utcnow
from idp.errors import error_page
from idp.extensions import db
from idp.interaction import state
from idp.interaction.locale import from_ui_locales
from idp.oauth import assurance
from idp.terms import service as terms


@dataclass
class Pending:
    """A validated request waiting for the resident's decision on the consent page."""

    grant: object
    client: Client
    resident: Resident
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
    """Redirect to the client when its redirect URI was verified, else show a page."""
    if error.redirect_uri:
        server = _server()
        response = server.handle_error_response(None, error)
        current_app.extensions["idp.oauth.iss"].add_issuer_parameter(server, response)
        return response
    return error_page(400, _("This sign-in request cannot be processed"),
                      _("The service sent an invalid sign-in request. Please contact the "
                        "service."), detail=f"{error.error}: {error.description or ''}")


def invalid_request_page():
    return error_page(400, _("This sign-in request cannot be processed"),
                      _("The request from the service is invalid."))


def refuse_bad_input(error):
    """A parameter refused by ``idp.inputs`` (NUL, lone surrogate, overlong), RFC 6749
    §4.1.2.1: a page when the client or its redirect URI is missing, invalid or itself
    refused (never redirect then); otherwise ``invalid_request`` to the verified redirect
    URI. A refused ``state`` gets the page too: we do not echo a value we refused."""
    args = request.args
    limit = config.settings().max_input_length
    trusted = ("client_id", "redirect_uri", "state")
    if error.field is None or any(
            inputs.problem(value, limit) for name in trusted for value in args.getlist(name)):
        return invalid_request_page()
    client = clients.find_client(args.get("client_id"))
    if client is None or not client.is_active:
        return invalid_request_page()
    redirect_uri = args.get("redirect_uri") or client.get_default_redirect_uri()
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return invalid_request_page()
    return error_response(InvalidRequestError(error.description, redirect_uri=redirect_uri,
                                              state=args.get("state")))


def check_client_connected(client_id):
    client = clients.find_client(client_id)
    if client is not None and not client.is_active:
        return error_page(
            403, _("This service is no longer connected"),
            _("%(service)s (provided by %(company)s) can no longer use your consortium ID. "
              "No information about you is sent to it.",
              service=client.name, company=client.company.name))
    return None


def check_login(args, row: BrowserSession | None, item: dict | None) -> bool:
    """True when the current sign-in satisfies prompt and max_age."""
    if row is None:
        return False
    fresh = item is not None and item["login_session"] == row.id
    if fresh:
        return True
    if "login" in (args.get("prompt") or "").split():
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


def authorize(source: Request, uid: str | None = None):
    item = state.load_interaction(uid) if uid else None
    args = source.args
    # ui_locales counts when the request arrives; once it is an interaction,
    # the interaction's locale does (the resident may have switched language).
    g.ui_locale = item.get("locale") if item is not None else from_ui_locales(
        args.get("ui_locales"))
    disconnected = check_client_connected(args.get("client_id"))
    if disconnected is not None:
        return disconnected
    row = state.browser_session()
    try:
        logged_in = check_login(args, row, item)
        bad_max_age = False
    except ValueError:
        logged_in, bad_max_age = row is not None, True
    resident = db.session.get(Resident, row.resident_id) if logged_in else None
    prompts = (args.get("prompt") or "").split()
    try:
        grant = _server().get_consent_grant(request=source, end_user=resident)
        if bad_max_age:
            raise InvalidRequestError("'max_age' must be a non-negative integer.",
                                      redirect_uri=grant.redirect_uri, state=args.get("state"))
        if resident is None:
            uid = uid or state.save_interaction(source.query_string.decode(), g.ui_locale)
            return redirect(url_for("interaction.login", interaction=uid))
        if terms.needs_acceptance(resident):
            # Nothing is released before the resident has accepted the terms
            # in force (check_terms); declining there signs them out.
            if "none" in prompts:
                raise InteractionRequiredError(redirect_uri=grant.redirect_uri,
                                               state=args.get("state"))
            uid = uid or state.save_interaction(source.query_string.decode(), g.ui_locale)
            return redirect(url_for("account.terms", interaction=uid))
        client = grant.request.client
        # The scopes, plus "verified_claims" when asked for (idp.oauth.assurance).
        requested = assurance.consent_items(scope_to_list(grant.request.scope or ""),
                                            grant.request.payload.data, client, resident)
        if consent_service.reasons_to_ask(resident.id, client.id, requested,
                                          prompt_consent="consent" in prompts):
            if "none" in prompts:
                raise ConsentRequiredError(redirect_uri=grant.redirect_uri,
                                           state=args.get("state"))
            uid = uid or state.save_interaction(source.query_string.decode(), g.ui_locale)
            return redirect(url_for("interaction.consent", uid=uid))
    except OAuth2Error as error:
        error.state = args.get("state")
        return error_response(error)
    except ValueError:
        # Authlib refuses to build an error whose description would echo
        # characters an error_description cannot carry: the request is junk.
        return invalid_request_page()
    if uid:
        state.finish_interaction(uid)
    return issue_code(grant, resident, row)


def issue_code(grant, resident: Resident, row: BrowserSession | None):
    grant.request.browser_session = row
    return _server().create_authorization_response(request=grant.request, grant_user=resident,
                                                   grant=grant)


def resume(uid: str):
    """Continue an interaction after login."""
    item = state.load_interaction(uid)
    if item is None:
        return expired_interaction()
    return authorize(rebuild(item["query"]), uid)


def expired_interaction():
    return error_page(400, _("This sign-in has expired"),
                      _("Please go back to the service and start signing in again."))


def pending_consent(uid: str) -> Pending | object:
    """The request awaiting consent, or a response to send instead."""
    item = state.load_interaction(uid)
    if item is None:
        return expired_interaction()
    g.ui_locale = item.get("locale")
    source = rebuild(item["query"])
    disconnected = check_client_connected(source.args.get("client_id"))
    if disconnected is not None:
        return disconnected
    resident = state.current_resident()
    if resident is None:
        return redirect(url_for("interaction.login", interaction=uid))
    if terms.needs_acceptance(resident):  # new terms published while the page was open
        return redirect(url_for("account.terms", interaction=uid))
    try:
        grant = _server().get_consent_grant(request=source, end_user=resident)
    except OAuth2Error as error:
        error.state = source.args.get("state")
        return error_response(error)
    except ValueError:
        return invalid_request_page()
    return Pending(grant, grant.request.client, resident,
                   assurance.consent_items(scope_to_list(grant.request.scope or ""),
                                           grant.request.payload.data, grant.request.client,
                                           resident))


def decide(uid: str, pending: Pending, allow: bool, granted: list[str]):
    """Record the resident's decision and answer the client."""
    state.finish_interaction(uid)
    if not allow:
        consent_service.record_denial(pending.resident, pending.client, pending.requested)
        return _server().create_authorization_response(request=pending.grant.request,
                                                       grant_user=None, grant=pending.grant)
    granted = [s for s in granted if s in pending.requested]
    consent_service.grant(pending.resident, pending.client, pending.requested, granted)
    return issue_code(pending.grant, pending.resident, state.browser_session())


def refuse(uid: str):
    """The resident declined to go on (the terms page): answer the client's pending
    request with ``access_denied`` when it can be trusted; None when there is nothing
    to answer (expired interaction, disconnected client, invalid request)."""
    item = state.load_interaction(uid)
    if item is None:
        return None
    source = rebuild(item["query"])
    if check_client_connected(source.args.get("client_id")) is not None:
        return None
    try:
        grant = _server().get_consent_grant(request=source, end_user=None)
    except (OAuth2Error, ValueError):
        return None
    state.finish_interaction(uid)
    return _server().create_authorization_response(request=grant.request, grant_user=None,
                                                   grant=grant)
