"""The interaction's own error pages: what a resident reads when a request
cannot go on. The protocol (``idp.oauth.authorize``) only says why."""

from __future__ import annotations

from flask_babel import gettext as _

from idp.errors import error_page


def disconnected(client):
    """The client or its company was cut off (``client_still_connected``)."""
    return error_page(
        403, _("This service is no longer connected"),
        _("%(service)s (provided by %(company)s) can no longer use your consortium ID. "
          "No information about you is sent to it.",
          service=client.name, company=client.company.name))


def refused(detail: str | None):
    """A request with no verified redirect URI to answer at (``oauth.authorize.Refused``)."""
    if detail is not None:
        return error_page(400, _("This sign-in request cannot be processed"),
                          _("The service sent an invalid sign-in request. Please contact the "
                            "service."), detail=detail)
    return error_page(400, _("This sign-in request cannot be processed"),
                      _("The request from the service is invalid."))


def expired_interaction():
    return error_page(400, _("This sign-in has expired"),
                      _("Please go back to the service and start signing in again."))
