"""The resident's side of the device flow: enter or confirm the code, sign in,
approve or decline (RFC 8628 §3.3), and the QR codes kiosks display.

Opening ``verification_uri_complete`` never approves anything by itself: the
consent page is always shown, with the code to compare against the screen,
even when an earlier consent exists (RFC 8628 §5.4, remote phishing).
"""

from __future__ import annotations

import io

import qrcode
import qrcode.image.pure
import qrcode.image.svg
from flask import Blueprint
from flask import Response
from flask import abort
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from idp import config
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.consent import service as consent_service
from idp.consent.items import display_values
from idp.consent.items import items_for
from idp.errors import error_page
from idp.exchange import links
from idp.extensions import commit_on_error
from idp.extensions import db
from idp.extensions import limiter
from idp.interaction import flow
from idp.interaction.views.consent import expiry_choices
from idp.interaction.views.consent import registered_item
from idp.kiosk.service import kiosk_for
from idp.oauth import device as device_flow
from idp.terms import service as terms

bp = Blueprint("device", __name__)


def _attempts() -> str:
    return config.settings().user_code_attempts


def _browser_key() -> str:
    # Per browser: the session cookie's CSRF secret is stable for a browser.
    return "device-browser:" + str(session.get("csrf_token") or request.remote_addr)


def _failed(response) -> bool:
    return response.status_code == 400


@bp.route("/device", methods=["GET", "POST"])
@limiter.limit(_attempts, deduct_when=_failed, methods=["POST"],
               error_message="too many wrong codes")
@limiter.limit(_attempts, key_func=_browser_key, deduct_when=_failed, methods=["POST"],
               error_message="too many wrong codes")
def enter_code():
    """Enter the code shown on the kiosk (prefilled from verification_uri_complete)."""
    if request.method == "GET":
        return render_template("device.html", user_code=request.args.get("user_code", "")[:32],
                               error=None)
    value = request.form.get("user_code", "")
    row = device_flow.find_by_user_code(value)
    if row is None:
        record(AuditTag.USER_CODE_FAILURE)
        commit_on_error()  # the failure's audit record stays
        return render_template("device.html", user_code=value[:32],
                               error=_("This code is not valid or has expired. Check the code "
                                       "on the screen and try again.")), 400
    session["device_code_id"] = row.id
    session["device_user_code"] = device_flow.format_user_code(
        device_flow.normalise_user_code(value))
    return redirect(url_for("device.confirm"))


def _pending():
    row = db.session.get(device_flow.DeviceCode, session.get("device_code_id") or 0)
    if row is None or row.status != "pending" or row.is_expired():
        session.pop("device_code_id", None)
        return None
    return row


@bp.route("/device/confirm", methods=["GET", "POST"])
def confirm():
    """Show who asks and what the kiosk logs; record the resident's decision."""
    row = _pending()
    if row is None:
        return error_page(400, _("This code has expired"),
                          _("Start again from the screen: it will show a new code."))
    client = row.client
    # The policy table, as for /authorize: the client still connected, signed
    # in, the terms in force accepted; consent is always asked here.
    answer, resident = flow.confirm_device(client)
    if answer is not None:
        return answer
    if request.method == "POST":
        decision = request.form.get("decision")
        expiry = request.form.get("link_expiry") or None
        if decision in ("allow", "deny") and (expiry is None or expiry in links.EXPIRY_CHOICES):
            requested = row.scope.split()
            if decision == "allow":
                consent = consent_service.grant(resident, client, requested, requested)
                # Registered data asked for: a data link per source, as on the consent page.
                links.grant(resident.id, client, requested, consent.scopes, expiry)
            else:
                consent_service.record_denial(resident, client, requested)
            device_flow.decide(row, resident, decision == "allow",
                               amr=flow.browser_session().amr)
            session.pop("device_code_id", None)
            session.pop("device_user_code", None)
            return render_template("device_done.html", approved=decision == "allow",
                                   client=client)
    kiosk = kiosk_for(client.id)
    items = [{"scope": i.scope, "label": str(i.label), "detail": str(i.detail),
              "value": display_values(resident, i.scope),
              **registered_item(resident.id, i.scope)} for i in items_for(row.scope.split())]
    current_terms = terms.current()
    purpose = client.purpose_en if str(get_locale()) == "en" and client.purpose_en \
        else client.purpose
    return render_template(
        "device_consent.html",
        client=client, company=client.company, kiosk=kiosk, purpose=purpose,
        items=items,
        link_expiry=expiry_choices() if any(i["registered"] for i in items) else None,
        user_code=session.get("device_user_code"), resident=resident,
        terms_version=current_terms.version,
        form_action=url_for("device.confirm"),
    ), 400 if request.method == "POST" else 200


@bp.get("/device/qr/<code>.<any(svg, png):fmt>")
def qr(code: str, fmt: str):
    """The QR image of ``/device?user_code=<code>`` (verification_uri_complete).

    A pure function of the code's spelling: any well-formed code gets its image,
    pending or not, and the database is never read. Answering 404 for codes that
    are not pending made this an unthrottled oracle for live user codes, around
    the attempt limits of /device (RFC 8628 §5.1). The image tells nobody more
    than the URL it encodes, which anyone can write down.
    """
    normalised = device_flow.normalise_user_code(code)
    if normalised is None:
        abort(404)
    target = url_for("device.enter_code", user_code=device_flow.format_user_code(normalised))
    uri = config.settings().endpoint(target)
    if fmt == "svg":
        image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, border=2)
        body, mimetype = image.to_string(), "image/svg+xml"
    else:
        image = qrcode.make(uri, image_factory=qrcode.image.pure.PyPNGImage, box_size=8,
                            border=2)
        buffer = io.BytesIO()
        image.save(buffer)
        body, mimetype = buffer.getvalue(), "image/png"
    # The same code always gives the same image: caches may keep it.
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "public, max-age=86400"})
