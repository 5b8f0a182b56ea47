"""A static map of the devices, drawn on the server as SVG from their coordinates.

No tiles, no external request, no script: a frame, a faint grid, one numbered marker
per device with coordinates (a circle for a kiosk, a square for a sensor), each a
link to its entry in the list. Coordinates are projected equirectangularly around
the devices' centre (the area of a city is small enough for that to look right).
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape
from xml.sax.saxutils import quoteattr

WIDTH = 640
HEIGHT = 400
MARGIN = 40
# A lone device (or devices on one spot) is shown in a window of about 400 m.
MIN_SPAN = 0.004
COLOURS = {"kiosk": "#0b6e4f", "sensor": "#b54708"}


def render(points: list[tuple[str, str, int, float, float, str]], title: str) -> str | None:
    """``points`` are (kind, anchor, number, latitude, longitude, label); None when empty."""
    if not points:
        return None
    lats = [p[3] for p in points]
    lons = [p[4] for p in points]
    mid_lat = (min(lats) + max(lats)) / 2
    scale_x = math.cos(math.radians(mid_lat)) or 1e-6
    span_x = max((max(lons) - min(lons)) * scale_x, MIN_SPAN)
    span_y = max(max(lats) - min(lats), MIN_SPAN)
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    unit = min(inner_w / span_x, inner_h / span_y)
    centre_x = (min(lons) + max(lons)) / 2 * scale_x
    centre_y = mid_lat

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return (WIDTH / 2 + (lon * scale_x - centre_x) * unit,
                HEIGHT / 2 - (lat - centre_y) * unit)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="map-title" '
             f'class="transparency-map">',
             f'<title id="map-title">{escape(title)}</title>',
             f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#f5f7fa" '
             f'stroke="#cbd2d9"/>']
    for i in range(1, 8):
        x = WIDTH * i / 8
        y = HEIGHT * i / 8
        parts.append(f'<line x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{HEIGHT}" '
                     f'stroke="#e4e7eb"/>')
        parts.append(f'<line x1="0" y1="{y:.0f}" x2="{WIDTH}" y2="{y:.0f}" '
                     f'stroke="#e4e7eb"/>')
    parts.append(f'<text x="{WIDTH - 12}" y="24" text-anchor="end" font-size="14" '
                 f'fill="#52606d">N ↑</text>')
    for kind, anchor, number, lat, lon, label in points:
        x, y = xy(lat, lon)
        colour = COLOURS.get(kind, "#1f2933")
        shape = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="{colour}"/>' if kind == "kiosk"
                 else f'<rect x="{x - 10:.1f}" y="{y - 10:.1f}" width="20" height="20" '
                      f'fill="{colour}"/>')
        parts.append(f'<a href={quoteattr("#" + anchor)}><title>{escape(label)}</title>{shape}'
                     f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11" '
                     f'fill="#ffffff">{number}</text></a>')
    parts.append("</svg>")
    return "".join(parts)
