"""The protocol requests member companies' back ends send most, answered beneath Flask.

A member company's resource servers introspect the tokens of its users' requests (RFC
7662), its back ends take client-credentials tokens (RFC 6749 §4.4), and its relying
parties read UserInfo (OIDC Core §5.3), often on every request. Through Flask, each cost
about 3,000 Python calls: the request and response objects, a dozen hooks, Authlib's
request, grant, endpoint and resource-protector objects. oidc-provider answers them in a
tenth of the CPU time (docs/performance.md). Here the common case of each is answered by
a WSGI layer in front of the Flask app, in about a third to a half of the calls:

- ``POST /introspect``: a form with ``token`` (and ``token_type_hint=access_token`` or
  none) and nothing else, about an active access token of the caller's own company.
- ``POST /token``: ``grant_type=client_credentials`` and a ``scope`` of
  fixed scopes of our own (or none), from a client registered for the grant and those
  scopes, within its rate limit, without an ``Origin`` (CORS is Flask's).
- ``GET /userinfo`` with a Bearer header and nothing else (no ``Origin``), for a valid
  token with ``openid`` in the consent in force, answered in JSON.
- ``POST /token``: a kiosk's ``device_code`` poll of a code still pending (RFC 8628
  §3.5), answered ``authorization_pending`` or ``slow_down`` (PostgreSQL).

All: https (or http to a loopback host, as Authlib allows), no query string and no
cookie, and no Flask-Limiter limit on the endpoint (``idp.extensions.skip_unlimited``).
Introspection and tokens are authenticated with ``client_secret_basic`` by an active confidential
client that is in this worker's client cache (``idp.clients.cache``) and registered for
that method.

Anything else is handed to Flask untouched, with the body it sent, and answered there
exactly as before: an error of any kind, another method of authentication, a refresh
token, a token of another company, an expired or revoked one, a client not cached yet, a
family's scope. This layer never refuses a request; it answers only what the full
path would answer in the same way (``tests/flows/performance/test_direct_answers.py``
sends each case with the layer on and off and compares the answers), and it is stricter
than the full path about what it takes on.

What every answer gets is kept. The revocation epoch must be the one the cached client
was read under: introspection reads it along the token's lookup, and a token is written
only while it holds (``idp.access.epoch.run_under``; on SQLite the INSERT reads it along
and is rolled back when it moved); otherwise Flask answers from the
database, so a cut-off committed since the cache was filled is never missed. A token
gets its audit entry, with the caller's address and user agent, in the statement that
writes it, and its rate-limit count (``idp.oauth.ratelimit.allowed``). Every answer gets
the security headers (``idp.http``), the request id, the metric and the log line
(``idp.logs``), and is counted in ``idp_direct_answers_total``. UserInfo reads its token
as the resource protector does (with its client, company and resident: no cached state),
and releases the claims through the same ``release``, which records the release once per
token and set of claims, committed with the answer.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from authlib.oauth2.rfc8628 import AuthorizationPendingError
from authlib.oauth2.rfc8628 import SlowDownError
from flask import Flask

from idp import config
from idp import http
from idp import inputs
from idp import logs
from idp import metrics
from idp import scopes as registry
from idp import secrets
from idp.access import epoch
from idp.access.models import Token
from idp.clients import cache as client_cache
from idp.clients.models import Client
from idp.consent import service as consent_service
from idp.db import holds_transaction
from idp.db import utcnow
from idp.extensions import UNLIMITED
from idp.extensions import db
from idp.oauth import device
from idp.oauth import introspection
from idp.oauth import ratelimit
from idp.oauth import tokens
from idp.oauth.oidc import release
from idp.oauth.server import require_oauth
from idp.oauth.tokens import Principal
from idp.outbox import service as outbox

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class Answer:
    """What a direct answer sends: a JSON body, the client it was for, headers of its
    endpoint's own beyond the standard ones, and whether it wrote."""

    __slots__ = ("body", "client_id", "headers", "status", "wrote")

    def __init__(self, body: bytes, client_id: str,
                 headers: tuple[tuple[str, str], ...] = (), wrote: bool = False,
                 status: int = 200) -> None:
        self.body = body
        self.client_id = client_id
        self.headers = headers
        self.wrote = wrote
        self.status = status


class DirectAnswers:
    """WSGI: ``ROUTES`` answered here when they can be (see the module), everything else
    by ``flask_app`` (the Flask app's own ``wsgi_app``). Sits inside the forwarded-headers
    middleware, so it sees the client's address and scheme as Flask does."""

    def __init__(self, app: Flask, flask_app: Callable) -> None:
        self.app = app
        self.flask_app = flask_app
        self.enabled = True  # tests turn it off to compare with Flask's answers
        self._headers: list[tuple[str, str]] | None = None
        self._security: list[tuple[str, str]] | None = None  # with no-store

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = ROUTES.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")))
        # A cookie is a browser's: Flask may refresh its session in the answer.
        if route is None or not self.enabled or "HTTP_COOKIE" in environ:
            return self.flask_app(environ, start_response)
        endpoint = route.endpoint
        if endpoint not in self.app.extensions.get(UNLIMITED, ()):
            return self.flask_app(environ, start_response)  # Flask-Limiter has a limit for it
        started = time.perf_counter()
        settings = self.app.extensions[config.EXTENSION]
        body, answer = None, None
        if not _secure(environ):
            pass
        elif route.reads == FORM:
            body, answer = _form(environ, settings, route.answers)
        else:
            body, answer = _json(self.app, environ, settings, route), route.answers[0][1]
        done = None
        if body is not None:
            try:
                done = self._within_app(answer, environ, body)
            except Exception:  # Flask answers it, with its error handling
                log.warning("direct answer failed; answering through Flask", exc_info=True)
        if done is None:
            return self.flask_app(environ, start_response)
        metrics.DIRECT_ANSWERS.labels(endpoint=endpoint).inc()
        request_id = logs.request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        standard = self._standard_headers() if route.oauth else self._security_headers()
        start_response(STATUS_LINES[done.status], [*standard, *done.headers,
                                                   ("Content-Length", str(len(done.body))),
                                                   (logs.REQUEST_ID_HEADER, request_id)])
        logs.answered(endpoint, environ["REQUEST_METHOD"], lambda: environ["PATH_INFO"],
                      done.status,
                      started, lambda: done.client_id, request_id)
        return [done.body]

    def _within_app(self, answer, environ: dict, body: Any) -> Answer | None:
        """``answer`` in an app context of its own, as Flask's request has, whose end
        removes the session (rolling back what it did not commit) and returns its
        connection. A single statement commits by itself (``idp.db.run_alone``); what
        an answer wrote in the session's transaction (and, in the tests, on the
        session's connection) is committed here, as Flask's unit of work would commit
        it. Once it is committed, the answer stands: nothing after it hands the request
        to Flask, which would write it again."""
        with self.app.app_context():
            done = answer(self.app, environ, body)
            if done is not None and done.wrote:
                if holds_transaction(db.session()):
                    db.session.commit()
                try:
                    outbox.deliver_enqueued(self.app)  # as Flask's teardown would
                except Exception:
                    log.warning("waking the outbox failed; it delivers on its next pass",
                                exc_info=True)
            return done

    def _standard_headers(self) -> list[tuple[str, str]]:
        """Authlib's headers of every endpoint answer (JSON, no-store), then ours."""
        if self._headers is None:
            self._headers = default_json_headers + http.security_headers(
                self.app.extensions[config.EXTENSION])
        return self._headers

    def _security_headers(self) -> list[tuple[str, str]]:
        """Ours alone, as ``idp.http`` puts them on an answer that sets no caching of its
        own (an API answer names its own content type)."""
        if self._security is None:
            self._security = http.security_headers(
                self.app.extensions[config.EXTENSION]) + http.NO_STORE
        return self._security


def _secure(environ: dict) -> bool:
    """Authlib's check of every OAuth request (``OAuth2Request``, RFC 6749 §1.6, §3.1):
    https, or http to a loopback host; otherwise Flask answers ``insecure_transport``."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    return is_secure_transport(f"{environ.get('wsgi.url_scheme')}://{host}/")


def _form(environ: dict, settings, answers: tuple[tuple[bytes, Callable], ...]
          ) -> tuple[dict[str, str] | None, Callable | None]:
    """The request's form when it is plain (urlencoded ASCII, each name once, no query
    string, within the body and value limits Flask applies (``idp.inputs``), no NUL),
    and the first of ``answers`` whose marker the body holds. The body read is put back
    for Flask in every case. A body without any marker is not parsed (the token
    endpoint's other grants: a code exchange or a refresh goes on to Flask at the cost
    of a search or two). A GET has an empty form: no query string and no body."""
    if environ.get("QUERY_STRING") or "HTTP_TRANSFER_ENCODING" in environ:
        return None, None
    if environ["REQUEST_METHOD"] == "GET":
        empty = environ.get("CONTENT_LENGTH") in (None, "", "0") and not environ.get("CONTENT_TYPE")
        return ({}, answers[0][1]) if empty else (None, None)
    if environ.get("CONTENT_TYPE") != FORM:
        return None, None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None, None
    if not 0 < length <= settings.max_body_protocol:
        return None, None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:
        return None, None
    answer = next((answer for marker, answer in answers if marker in body), None)
    if answer is None:
        return None, None
    try:
        # Strict: a percent-encoded sequence that is not UTF-8 is Flask's to read (it
        # keeps it encoded, as parse_qsl's default would not).
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                          errors="strict")
    except ValueError:  # UnicodeDecodeError too
        return None, None
    form = dict(pairs)
    limit = settings.max_input_length
    if len(form) != len(pairs) or any("\x00" in value or len(value) > limit
                                      for value in form.values()):
        return None, None
    return form, answer


def _json(app: Flask, environ: dict, settings, route: Route) -> Any:
    """The request's JSON body when it is plain: ``application/json`` (no parameters), no
    query string, within the API body limit, parsed as Flask parses it, and nothing
    ``idp.inputs`` refuses (too deep; NUL, a lone surrogate or an overlong string). The
    body read is put back for Flask in every case. None otherwise (and for ``null``).
    ``idp.inputs``' walk of every string is left out where the route's answer refuses
    more than it does (``Route.strings_within``)."""
    if environ.get("QUERY_STRING") or "HTTP_TRANSFER_ENCODING" in environ \
            or environ.get("CONTENT_TYPE") != JSON:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= settings.max_body_api:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:
        return None
    try:
        value = app.json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError too
        return None
    limit = settings.max_input_length
    if route.strings_within is not None and route.strings_within <= limit:
        return value  # the answer's own checks are stricter than the walk
    if inputs.json_refusal(value, limit) is not None:  # one walk
        return None
    return value


def bearer(environ: dict, scopes: list[str], accept: Callable[[Token], bool] | None = None,
           *, as_state: bool = False, resident: bool = False) -> Any:
    """The access token of the request's Bearer header, parsed, read and checked by the
    resource protector's own validator for ``scopes`` (as ``require_oauth(scopes)``:
    its client, company, consent in force, and the read counted), or None where Flask
    must answer: no header or a malformed one, an unknown, expired, revoked or
    insufficient token (the challenge is Flask's), or one ``accept`` refuses before it
    is checked (so that its read is counted once, by Flask). A ``Token``, or with
    ``as_state`` its values (``tokens.TokenState``; with ``resident`` too,
    ``tokens.ResidentTokenState``), read in one Core statement."""
    try:
        validator, token_string = require_oauth.parse_request_authorization(
            _Authorization(environ))
        row = (validator.authenticate_state(token_string, resident=resident) if as_state
               else validator.authenticate_token(token_string))
        if row is None or (accept is not None and not accept(row)):
            return None
        validator.validate_token(row, scopes, None)
    except OAuth2Error:
        return None
    return row


def _basic_client(app: Flask, environ: dict, endpoint: str) -> tuple[Client, Any] | None:
    """The cached client that ``client_secret_basic`` authenticates and the epoch value it
    was cached under, when the header is plain (no percent-encoding: Authlib's unquoting
    leaves it as it is) and the client is active, confidential and registered for that
    method at this endpoint."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon or "%" in decoded or not client_id or not secret:
        return None
    client, tagged = client_cache.peek(app, client_id)
    if client is None or client.is_public or not client.is_active \
            or not client.check_endpoint_auth_method("client_secret_basic", endpoint) \
            or not client.check_client_secret(secret):
        return None
    return client, tagged


def introspect(app: Flask, environ: dict, form: dict[str, str]) -> Answer | None:
    """RFC 7662 for an active access token of the client's own company
    (``idp.oauth.introspection``: same answer, same rules)."""
    if form.keys() - {"token", "token_type_hint"} or \
            form.get("token_type_hint", "access_token") != "access_token" or not form.get("token"):
        return None
    authenticated = _basic_client(app, environ, "introspection")
    if authenticated is None:
        return None
    client, tagged = authenticated
    token = tokens.state_by_access_token(form["token"])
    if token is None or token.epoch != tagged:
        return None  # unknown as an access token, or a cut-off since the cache was filled
    if token.is_revoked() or token.is_expired() or token.client.company_id != client.company_id:
        return None
    scopes = consent_service.scopes_in_force_for(token)
    if token.resident_id is not None and not scopes:
        return None  # the consent is gone: Flask answers {"active": false}
    payload = introspection.active(token, scopes, "access_token", token.access_expires_at)
    return Answer(app.json.dumps(payload).encode(), client.id)


def client_credentials(app: Flask, environ: dict, form: dict[str, str]) -> Answer | None:
    """RFC 6749 §4.4: a token for a client registered for the grant, with scopes of our
    own it is registered for (or none), within its rate limit; issued with its audit
    entry under the epoch the client was cached with, in one statement on PostgreSQL
    (``idp.oauth.tokens.issue_client_credentials``). The token is made by the server's
    own generator, as the grant makes it."""
    if form.keys() - {"grant_type", "scope"} or form.get("grant_type") != "client_credentials" \
            or "HTTP_ORIGIN" in environ:
        return None  # an Origin is a browser's: CORS is Flask's to answer
    authenticated = _basic_client(app, environ, "token")
    if authenticated is None:
        return None
    client, tagged = authenticated
    if not client.check_grant_type("client_credentials"):
        return None
    # As the grant reads it: standard scopes expanded to the client's finer ones; then
    # only fixed scopes of our own that make sense without a resident (a family's scope
    # asks its contract, Flask's to answer), each registered for the client.
    scope = registry.expand(form.get("scope"), client.scopes)
    if scope is not None and not all(registry.own_fixed(name)
                                     and not registry.is_about_resident(name)
                                     for name in scope.split(" ")):
        return None
    if client.get_allowed_scope(scope) is None:
        return None
    if not ratelimit.allowed(app, "client:" + client.client_id, environ):
        return None  # Flask counts it again, refuses it and answers the 429
    token = app.extensions["idp.oauth"].generate_token(
        "client_credentials", client, scope=scope, include_refresh_token=False)
    caller = (environ.get("REMOTE_ADDR"), environ.get("HTTP_USER_AGENT", "")[:300] or None)
    if tokens.issue_client_credentials(token, client, tagged, caller) is None:
        return None  # the epoch moved: nothing was written
    return Answer(app.json.dumps(token).encode(), client.id, (("Vary", "Origin"),),
                  wrote=True)


def device_poll(app: Flask, environ: dict, form: dict[str, str]) -> Answer | None:
    """RFC 8628 §3.4–3.5: a kiosk's poll of a code its resident has not decided on yet,
    answered ``authorization_pending`` (or ``slow_down`` when it came within the
    interval, which then grows), the answer kiosks get most often. The kiosk is a cached
    client registered for the grant, within its rate limit; the code is read, checked
    and its poll noted by the grant's own statement (``idp.oauth.device.PENDING_POLL``:
    this kiosk's, pending, unconsumed, unexpired), under the epoch the kiosk was cached
    with. PostgreSQL only (SQLite's poll takes the grant's path). Every other case (an
    unknown, foreign, expired or decided code, an approval to be redeemed, an epoch
    that moved) wrote nothing, and Flask answers it."""
    if form.keys() - {"grant_type", "device_code"} or not form.get("device_code") \
            or form.get("grant_type") != DEVICE_CODE_GRANT_TYPE or "HTTP_ORIGIN" in environ:
        return None
    if db.session.get_bind().dialect.name != "postgresql":
        return None
    authenticated = _basic_client(app, environ, "token")
    if authenticated is None:
        return None
    client, tagged = authenticated
    if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
        return None
    if not ratelimit.allowed(app, "client:" + client.client_id, environ):
        return None  # Flask counts it again, refuses it and answers the 429
    found = epoch.run_under(device.PENDING_POLL, {
        "digest": secrets.digest(form["device_code"]), "kiosk": client.id, "now": utcnow()},
        tagged)
    if found is None:
        return None
    error = SlowDownError() if found.too_soon else AuthorizationPendingError()
    # As Authlib's server answers an error (its handle_response: Flask's json.dumps).
    return Answer(app.json.dumps(dict(error.get_body())).encode(), client.id,
                  (("Vary", "Origin"),), wrote=True, status=error.status_code)


class _Authorization:
    """The one header ``ResourceProtector.parse_request_authorization`` reads."""

    __slots__ = ("headers",)

    def __init__(self, environ: dict) -> None:
        self.headers = {"Authorization": environ.get("HTTP_AUTHORIZATION")}


def userinfo(app: Flask, environ: dict, form: dict[str, str]) -> Answer | None:
    """OIDC Core §5.3 ``GET /userinfo`` with a Bearer header, answered in JSON: the
    token parsed, read and checked by the resource protector's own validator
    (``idp.oauth.server``: its client, resident and consent in force, one statement),
    and the claims released by the same ``release`` (``idp.oauth.oidc``), which records
    a release once per token and set of claims. A signed answer
    (``userinfo_signed_response_alg``), a browser's request (``Origin``: CORS is
    Flask's) and every refusal are Flask's."""
    if "HTTP_ORIGIN" in environ:
        return None
    # Not a resident's token: Flask refuses it.
    token = bearer(environ, ["openid"], lambda row: row.subject is not None
                   and row.resident_id is not None, as_state=True, resident=True)
    if token is None:
        return None
    # The client as cached under the epoch the token was read with (a cut-off since the
    # cache was filled: Flask answers, reading it afresh). No request authenticates the
    # token's client, so a first UserInfo call of a client fills its entry.
    client, tagged = client_cache.peek(app, token.client_id)
    if client is None:
        client_cache.client(token.client_id)
        client, tagged = client_cache.peek(app, token.client_id)
    if client is None or token.epoch != tagged:
        return None
    if client.client_metadata.get("userinfo_signed_response_alg"):
        return None
    principal = Principal(token.resident, token.subject, client, claims=token.claims,
                          consented=consent_service.consented_for(token))
    noted = token.released_claims
    claims = release(principal, token.scope, "userinfo", token)
    released = token.released_claims != noted  # a new release, with its audit entry
    if released:
        tokens.release_noted(token)
    return Answer(app.json.dumps(claims).encode(), client.id, (("Vary", "Origin"),),
                  wrote=released)


class Route:
    """A request this layer may answer: the endpoint's name (as Flask's), how its body is
    read (``FORM`` or ``JSON``), its answers, each after what a body it can answer must
    hold (a form's: the first that matches is tried), and whether the answers are an
    OAuth endpoint's (Authlib's JSON headers) or name their own content type (an API's)."""

    __slots__ = ("answers", "endpoint", "oauth", "reads", "strings_within")

    def __init__(self, endpoint: str, reads: str,
                 answers: tuple[tuple[bytes, Callable[..., Answer | None]], ...],
                 oauth: bool = True, strings_within: int | None = None) -> None:
        self.endpoint = endpoint
        self.reads = reads
        self.answers = answers
        self.oauth = oauth
        self.strings_within = strings_within


# (method, path): the route.
ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/introspect"): Route("oauth.introspect", FORM, ((b"token=", introspect),)),
    ("POST", "/token"): Route("oauth.token", FORM, (
        (b"grant_type=client_credentials", client_credentials),
        (b"device_code=", device_poll))),
    ("GET", "/userinfo"): Route("oauth.userinfo", FORM, ((b"", userinfo),)),
}


def answer_json(method: str, path: str, endpoint: str,
                answer: Callable[[Flask, dict, Any], Answer | None],
                strings_within: int | None = None) -> None:
    """Have ``answer(app, environ, payload)`` answer a JSON request of a layer above this
    one beneath Flask (``idp.api``'s touch events), by the rules of this module: it
    returns None for anything Flask must answer, having written nothing.

    ``strings_within``: the answer answers only a body whose strings, keys included, are
    all printable (no NUL, no lone surrogate) and at most that many characters long,
    nested no deeper than ``idp.inputs.MAX_JSON_DEPTH``. Whenever ``max_input_length``
    is at least that, nothing it answers is what ``idp.inputs`` refuses, and the walk of
    every string (600 in a batch of 100 touches, 7 % of its workers' CPU) is left out."""
    ROUTES[(method, path)] = Route(endpoint, JSON, ((b"", answer),), oauth=False,
                                   strings_within=strings_within)


STATUS_LINES = {200: "200 OK", 201: "201 CREATED", 400: "400 BAD REQUEST"}
