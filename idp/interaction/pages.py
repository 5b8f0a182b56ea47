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


def finished_interaction(client, allowed: bool, status: int = 200):
    """A sign-in this browser already finished (the back button after consent): say
    what happened and lead back to the service's home page (``client_uri``) if known."""
    if client is None:
        return error_page(status, _("This sign-in is already finished"),
                          _("Go back to the service you were using to continue."), done=True)
    if allowed:
        title = _("You are already signed in")
        message = _("You signed in to %(service)s (provided by %(company)s) and consented. "
                    "Go back to the service to continue.",
                    service=client.name, company=client.company.name)
    else:
        title = _("This sign-in is already finished")
        message = _("You declined to sign in to %(service)s (provided by %(company)s); "
                    "nothing was sent. To try again, start from the service.",
                    service=client.name, company=client.company.name)
    return error_page(status, title, message, done=True,
                      back=(client.client_uri, _("Go back to %(service)s", service=client.name))
                      if client.client_uri and client.is_active else None)


def expired_interaction():
    return error_page(400, _("This sign-in has expired"),
                      _("Please go back to the service and start signing in again."))
