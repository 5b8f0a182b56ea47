"""``/authorize``: where an authorization request enters the interaction
(RFC 6749 §4.1, OIDC Core §3.1.2), and where it continues after each step.

The route lives here, not in ``idp.oauth.views``: what answers a browser at
this address is decided by the interaction policy (``idp.interaction.flow``);
the protocol half (``idp.oauth.authorize``) only validates, issues and answers
errors.
"""

from __future__ import annotations

from flask import request

from idp import inputs
from idp.extensions import commit_on_error
from idp.interaction import flow
from idp.interaction import pages
from idp.interaction.views import bp
from idp.oauth import authorize as protocol


def refuse_bad_input(error):
    """A refused parameter (``idp.inputs``): ``invalid_request`` at the verified
    redirect URI, or a page."""
    try:
        return protocol.refuse_bad_input(error)
    except protocol.Refused as refused:
        return pages.refused(refused.detail)


@bp.get("/authorize")
@inputs.answers_bad_input(refuse_bad_input)
def authorize():
    """Authorization endpoint (code flow)."""
    commit_on_error()  # an error answer keeps its audit record, as a redirect keeps its code
    return flow.authorize(request)


@bp.get("/authorize/continue/<uid>")
def resume(uid: str):
    """Continue an authorization request after the resident signed in."""
    commit_on_error()  # an error page keeps its audit record, as a redirect keeps its code
    return flow.resume(uid)
