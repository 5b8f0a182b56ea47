"""``/transparency`` and ``/transparency.json``: what is collected where (seeds 001-003).

A public page (no sign-in) listing every kiosk and sensor in service with its company,
location, what it records, the purpose, retention and contact, in Japanese and English,
with a static SVG map drawn from the coordinates, and the same list as JSON for the
city's open-data portal. A kiosk's QR code can link to its entry:
``/transparency#kiosk-<client_id>`` (``?lang=en`` for English).

On the web floor beside the resident's pages rather than inside ``self_service``:
it is for passers-by who have no consortium ID, and reads the device registrations of
two domains (``kiosk``, ``sensors``), never a resident.
"""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify
from flask import render_template
from flask import request
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from idp import config
from idp.db import utcnow
from idp.locales import LOCALES
from idp.transparency import svgmap
from idp.transparency.entries import entries

bp = Blueprint("transparency", __name__)


@bp.before_request
def language_from_query():
    """A QR code printed for one language (``?lang=en``) opens the page in it."""
    lang = request.args.get("lang")
    if lang in LOCALES:
        g.ui_locale = lang


@bp.get("/transparency")
def page():
    """Every device, a map, and how to leave the statistics."""
    found = entries()
    locale = str(get_locale())
    points = [(e.kind, e.anchor, number, e.latitude, e.longitude, f"{number}. {e.name}")
              for number, e in enumerate(found, start=1)
              if e.latitude is not None and e.longitude is not None]
    svg = svgmap.render(points, _("Map of the kiosks and sensors"))
    settings = config.settings()
    return render_template(
        "transparency.html", entries=list(enumerate(found, start=1)), lang=locale,
        # Built by svgmap from numbers and escaped names only.
        map_svg=Markup(svg) if svg else None,  # noqa: S704
        idle_minutes=max(settings.kiosk_idle_timeout // 60, 1),
        max_minutes=settings.kiosk_max_session // 60)


@bp.get("/transparency.json")
def document():
    """The same list for the city's open-data portal (both languages in each entry)."""
    settings = config.settings()
    return jsonify({
        "publisher": {"ja": settings.consortium_name, "en": settings.consortium_name_en},
        "generated_at": utcnow().isoformat(),
        "kiosk_session": {"idle_timeout_seconds": settings.kiosk_idle_timeout,
                          "max_length_seconds": settings.kiosk_max_session},
        "devices": [e.as_json() for e in entries()],
    })
