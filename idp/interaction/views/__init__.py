"""Every page of the interaction (blueprints ``interaction`` and ``device``),
one module per step:

- ``authorize``      ``/authorize`` and ``/authorize/continue/<uid>``;
- ``login``          ``/login``, the home page and the language switch;
- ``passkey``        ``/login/passkey``: sign in with a passkey;
- ``second_factor``  ``/login/second-factor``;
- ``terms``          ``/terms``: accept (or decline) the consortium terms;
- ``consent``        ``/consent/<uid>``;
- ``device``         ``/device``: the device flow's pages and QR codes;
- ``logout``         ``/logout``.

Views parse the form, ask ``idp.interaction.flow`` what comes next, commit
and answer; templates are in ``consent_ui/templates``.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("interaction", __name__)

from idp.interaction.views import authorize  # noqa: E402,F401  (routes register on bp)
from idp.interaction.views import consent  # noqa: E402,F401
from idp.interaction.views import login  # noqa: E402,F401
from idp.interaction.views import logout  # noqa: E402,F401
from idp.interaction.views import passkey  # noqa: E402,F401
from idp.interaction.views import second_factor  # noqa: E402,F401
from idp.interaction.views import terms  # noqa: E402,F401
