"""The resident's own pages (blueprint ``account``): the web floor residents use
outside a sign-in. The steps of a sign-in (second factor, terms of use) are
interaction pages (``idp.interaction.views``).

- ``entry``    registration, email verification and password reset:
               reachable without a session;
- ``settings`` ``/account``: profile, email address, password, two-step
               verification, deletion;
- ``passkeys`` ``/account/security/passkeys``: add, name, remove passkeys;
- ``data``     ``/account/consents`` (withdrawal, receipts), ``/account/history``,
               ``/account/export``;
- ``registered`` ``/account/data``: registered data member companies sent
               (delete, dispute, stop and resume collection);
- ``forms``    reading what residents type;
- ``outbox``   ``/dev/outbox``, the mail a resident is sent, in development.

Every form posts with CSRF (the app's ``CSRFProtect``); state changes only on
POST. Views parse and call one service; mail it returns is queued with the
change (``mail.queue``) and sent by the outbox after the request's commit.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

from flask import Blueprint
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import get_locale

from idp import config
from idp import locales
from idp.accounts.service import normalise_email
from idp.extensions import limiter
from idp.interaction import flow

bp = Blueprint("account", __name__)


@bp.app_template_filter("local_time")
def local_time(value: dt.datetime | dt.date | None, seconds: bool = False) -> str:
    """Every time a resident reads: Japan time with the zone named, in the page's
    language (``idp.locales.japan_time``)."""
    return locales.japan_time(value, get_locale(), seconds=seconds)


def resident_required(view):
    """Signed-in residents only; others go to the login page and come back."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        resident = flow.current_resident()
        if resident is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else request.path
            return redirect(url_for("interaction.login", next=target), 303)
        g.resident = resident
        return view(*args, **kwargs)

    return wrapper


def _mail_limit() -> str:
    return config.settings().account_mail_limit


def _target_address() -> str:
    return "mail-target:" + normalise_email(request.form.get("email", "")[:254])


def _resident_key() -> str:
    resident = flow.current_resident()
    return "mail-resident:" + (resident.id if resident else str(request.remote_addr))


# Forms that send mail: per client address and per address mailed (or per
# resident), so neither one browser nor many can flood a mailbox.
limit_by_address = limiter.limit(_mail_limit, methods=["POST"])
limit_by_target = limiter.limit(_mail_limit, methods=["POST"], key_func=_target_address)
limit_by_resident = limiter.limit(_mail_limit, methods=["POST"], key_func=_resident_key)

from idp.self_service import data  # noqa: E402,F401  (routes register on bp)
from idp.self_service import entry  # noqa: E402,F401
from idp.self_service import passkeys  # noqa: E402,F401
from idp.self_service import registered  # noqa: E402,F401
from idp.self_service import settings  # noqa: E402,F401
