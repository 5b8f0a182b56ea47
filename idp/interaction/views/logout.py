"""Sign-out: RP-initiated logout (OIDC RP-Initiated Logout 1.0) and the
resident's own."""

from __future__ import annotations

from flask import current_app
from flask import g
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_babel import gettext as _

from idp.errors import error_page
from idp.extensions import csrf
from idp.interaction.locale import from_ui_locales
from idp.interaction.views import bp
from idp.oauth.oidc import EndSessionRefused
from idp.oauth.oidc import validate_end_session


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt
def logout():
    """RP-initiated logout (OIDC RP-Initiated Logout 1.0) and the resident's own sign-out."""
    server = current_app.extensions["idp.oauth"]
    try:
        end = validate_end_session()
    except EndSessionRefused as error:
        return error_page(400, _("This sign-out request cannot be processed"),
                          _("The service sent an invalid sign-out request."),
                          detail=error.detail)
    g.ui_locale = from_ui_locales(end.ui_locales)
    if end.needs_confirmation:
        if request.method == "GET":
            hidden = {k: v for k, v in request.args.items()
                      if k in ("client_id", "post_logout_redirect_uri", "state", "ui_locales",
                               "id_token_hint")}
            return render_template("logout_confirm.html", client=end.client, hidden=hidden,
                                   form_action=url_for("interaction.logout"),
                                   other_session=end.other_session)
        # Without an id_token_hint of this session only our own form may end it.
        csrf.protect()  # the app's CSRF check; a failure is answered by idp.errors
    response = server.create_endpoint_response("end_session", end)
    session.clear()
    return response or render_template("logged_out.html")
