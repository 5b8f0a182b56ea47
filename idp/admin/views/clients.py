"""Clients, kiosks and sensors: registration (the secret is shown once), settings, secret
rotation, revocation; a kiosk's or sensor's place and when it was last seen."""

from __future__ import annotations

import json

from flask import render_template
from flask import request
from flask import url_for
from flask_babel import gettext as _

from idp.admin.views import action
from idp.admin.views import admin_required
from idp.admin.views import bp
from idp.admin.views import confirmed
from idp.admin.views import done
from idp.admin.views import found
from idp.admin.views import refusable
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.extensions import commit_on_error
from idp.extensions import db
from idp.kiosk import service as kiosk_service
from idp.security.algorithms import SIGNING_ALGS
from idp.sensors import service as sensor_service

MAX_LINES = 20


def _lines(name: str) -> list[str]:
    values = [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]
    if len(values) > MAX_LINES:
        raise clients.ClientError(_("at most %(n)s lines", n=MAX_LINES))
    return values


def settings_from_form() -> clients.ClientSettings:
    return clients.ClientSettings(
        name=request.form.get("name", ""),
        redirect_uris=_lines("redirect_uris"),
        post_logout_redirect_uris=_lines("post_logout_redirect_uris"),
        grant_types=request.form.getlist("grant_type"),
        scopes=request.form.getlist("scope"),
        purpose=request.form.get("purpose", ""),
        purpose_en=request.form.get("purpose_en", ""),
        client_uri=request.form.get("client_uri"),
        policy_uri=request.form.get("policy_uri"),
        tos_uri=request.form.get("tos_uri"),
        backchannel_logout_uri=request.form.get("backchannel_logout_uri"),
        event_receiver_uri=request.form.get("event_receiver_uri"),
        verified_claims_allowed=request.form.get("verified_claims_allowed") == "yes",
    )


def _form_context(**extra):
    return {"grant_types": clients.GRANT_TYPES, "scopes": clients.SCOPES,
            "auth_methods": clients.AUTH_METHODS, "algs": SIGNING_ALGS,
            "companies": [c for c in clients.list_companies() if c.is_active], **extra}


@bp.get("/clients")
@admin_required
def clients_list():
    """Every client and kiosk, newest last, with its company and state."""
    company_id = request.args.get("company") or None
    kiosks = {k.client_id: k for k in kiosk_service.kiosks()}
    return render_template("admin/clients.html", clients=clients.list_clients(company_id),
                           kiosks=kiosks, companies=clients.list_companies(),
                           company_filter=company_id)


@bp.get("/clients/new")
@admin_required
def client_new():
    settings = clients.ClientSettings(name="", redirect_uris=[], post_logout_redirect_uris=[],
                                      grant_types=["authorization_code"], scopes=["openid"])
    return render_template("admin/client_new.html", values=settings, public=False,
                           method="client_secret_basic", alg="", jwks="",
                           company_id=request.args.get("company", ""), **_form_context())


@bp.post("/clients/new")
@action()
def client_create():
    """Register a client; the response page shows its secret, once."""
    values = settings_from_form()
    public = request.form.get("public") == "yes"
    method = request.form.get("token_endpoint_auth_method") or None
    alg = request.form.get("id_token_alg") or None
    company_id = request.form.get("company_id", "")
    raw_jwks = request.form.get("jwks", "").strip()
    try:
        try:
            jwks = json.loads(raw_jwks) if raw_jwks else None
        except ValueError:
            raise clients.ClientError(_("the JWKS is not valid JSON")) from None
        if jwks is not None and not isinstance(jwks, dict):
            raise clients.ClientError(_("the JWKS must be a JSON object with \"keys\""))
        client, secret = clients.register_client(
            company_id, values.name, redirect_uris=values.redirect_uris,
            post_logout_redirect_uris=values.post_logout_redirect_uris, public=public,
            grant_types=values.grant_types, scopes=values.scopes, purpose=values.purpose,
            purpose_en=values.purpose_en, client_uri=values.client_uri,
            policy_uri=values.policy_uri, tos_uri=values.tos_uri,
            token_endpoint_auth_method=method, jwks=jwks, id_token_signed_response_alg=alg,
            backchannel_logout_uri=values.backchannel_logout_uri,
            event_receiver_uri=values.event_receiver_uri,
            verified_claims_allowed=values.verified_claims_allowed, actor="admin")
    except clients.ClientError as error:
        db.session.rollback()
        clients_refusal("client:create", error, company_id=company_id[:16])
        return render_template("admin/client_new.html", values=values, public=public,
                               method=method or "", alg=alg or "", jwks=raw_jwks,
                               company_id=company_id, error=str(error),
                               **_form_context()), 400
    return render_template("admin/client_secret.html", client=client, secret=secret,
                           created=True)


def clients_refusal(what: str, error: Exception, **ids) -> None:
    """Audit a refused action whose page is shown again (the form keeps its input)."""
    record(AuditTag.ADMIN_REFUSED, action=what, reason=str(error)[:300], **ids)
    commit_on_error()


def _page(client_id: str) -> str:
    return url_for("admin.client", client_id=client_id)


def _ids(client_id: str) -> dict[str, str]:
    return {"client_id": client_id[:40]}


@bp.get("/clients/<client_id>")
@admin_required
def client(client_id: str):
    """One client: settings (editable unless revoked), secret rotation, revocation."""
    row = found(clients.find_client(client_id), client_id)
    return render_template("admin/client.html", client=row,
                           kiosk=kiosk_service.kiosk_for(row.id),
                           values=clients.settings_of(row), **_form_context())


@bp.post("/clients/<client_id>/edit")
@action(fresh=True)
@refusable("client:update", clients.ClientError, back=_page, ids=_ids)
def client_edit(client_id: str):
    """Change redirect URIs, scopes, grant types, purpose text and the other settings."""
    settings = settings_from_form()
    if "client_uri" not in request.form:  # a form without the field keeps the home page
        settings.client_uri = clients.get_client(client_id).client_uri
    _client, changes = clients.update_client(client_id, settings, actor="admin")
    if not changes:
        db.session.rollback()
        return done(_("Nothing was changed."), _page(client_id))
    return done(_("The client was saved: %(fields)s.", fields=", ".join(sorted(changes))),
                _page(client_id))


@bp.post("/clients/<client_id>/rotate-secret")
@action(fresh=True)
@refusable("client:rotate_secret", clients.ClientError, back=_page, ids=_ids)
def client_rotate(client_id: str):
    """A new secret, shown once; the old one stops working now."""
    client, secret = clients.rotate_secret(
        client_id, revoke_tokens=request.form.get("revoke_tokens") == "yes", actor="admin")
    return render_template("admin/client_secret.html", client=client, secret=secret,
                           created=False)


@bp.post("/clients/<client_id>/revoke")
@action(fresh=True)
@refusable("client:revoke", clients.ClientError, back=_page, ids=_ids)
def client_revoke(client_id: str):
    """Revoke for good; the admin types the client id to confirm."""
    if not confirmed(client_id):
        raise clients.ClientError(_("type the client id to confirm"))
    if clients.get_client(client_id).revoked_at is not None:
        raise clients.ClientError(_("the client is already revoked"))
    clients.revoke_client(client_id, actor="admin")
    return done(_("The client is revoked: it is cut off from now on."), _page(client_id))


# ---- kiosks ----------------------------------------------------------------------

@bp.get("/kiosks")
@admin_required
def kiosks():
    """Kiosks with their location, company, state and last contact."""
    return render_template("admin/kiosks.html", kiosks=kiosk_service.kiosks(),
                           companies=[c for c in clients.list_companies() if c.is_active])


def _form_company() -> dict[str, str]:
    return {"company_id": request.form.get("company_id", "")[:16]}


@bp.post("/kiosks")
@action()
@refusable("kiosk:create", clients.ClientError, back=lambda: url_for("admin.kiosks"),
           ids=_form_company)
def kiosk_create():
    """Register a kiosk (a device-flow client); its secret is shown once."""
    client, secret, _kiosk = kiosk_service.create_kiosk(
        request.form.get("company_id", ""), request.form.get("name", ""),
        request.form.get("location", ""), actor="admin", latitude=_number("latitude"),
        longitude=_number("longitude"), contact=request.form.get("contact", ""))
    return render_template("admin/client_secret.html", client=client, secret=secret,
                           created=True)


@bp.post("/kiosks/<client_id>/location")
@action()
@refusable("kiosk:update", clients.ClientError, back=_page, ids=_ids)
def kiosk_location(client_id: str):
    kiosk_service.update_kiosk(client_id, request.form.get("location", ""), actor="admin")
    return done(_("The kiosk's location was saved."), _page(client_id))


def _number(name: str) -> float | str | None:
    """An optional number from the form: None when empty, the text when not a number (the
    domain refuses it with its own message)."""
    value = request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value


# ---- sensors ----------------------------------------------------------------------

@bp.get("/sensors")
@admin_required
def sensors():
    """People-counting sensors with their place, company, state and last contact."""
    return render_template("admin/sensors.html", sensors=sensor_service.sensors(),
                           companies=[c for c in clients.list_companies() if c.is_active])


@bp.post("/sensors")
@action()
@refusable("sensor:create", clients.ClientError, back=lambda: url_for("admin.sensors"),
           ids=_form_company)
def sensor_create():
    """Register a sensor (a client_credentials client); its secret is shown once."""
    try:
        retention = int(request.form.get("retention_days", "365") or 365)
    except ValueError:
        retention = 0  # refused by the domain, with its message
    client, secret, _sensor = sensor_service.create_sensor(
        request.form.get("company_id", ""), request.form.get("name", ""),
        sensor_service.Placement(
            location=request.form.get("location", ""), latitude=_number("latitude"),
            longitude=_number("longitude"), area=request.form.get("area", ""),
            retention_days=retention, contact=request.form.get("contact", "")),
        actor="admin")
    return render_template("admin/client_secret.html", client=client, secret=secret,
                           created=True)
