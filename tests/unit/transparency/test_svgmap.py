"""The static map: projection, a lone device, escaping."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from idp.transparency import svgmap


def markers(svg: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r'cx="([\d.]+)" cy="([\d.]+)"', svg)]


def test_no_points_no_map():
    """Test that nothing is drawn without coordinates."""
    assert svgmap.render([], "map") is None


def test_north_is_up_and_east_is_right():
    """Test the projection's orientation."""
    svg = svgmap.render([("kiosk", "a", 1, 43.00, 141.00, "A"),
                         ("kiosk", "b", 2, 43.01, 141.01, "B")], "map")
    (x1, y1), (x2, y2) = markers(svg)
    assert x2 > x1 and y2 < y1
    for x, y in markers(svg):
        assert svgmap.MARGIN - 1 <= x <= svgmap.WIDTH - svgmap.MARGIN + 1
        assert svgmap.MARGIN - 1 <= y <= svgmap.HEIGHT - svgmap.MARGIN + 1


def test_a_lone_device_is_centred():
    """Test that one device (no span) is drawn in the middle."""
    svg = svgmap.render([("kiosk", "a", 1, 43.06, 141.35, "A")], "map")
    assert markers(svg) == [(svgmap.WIDTH / 2, svgmap.HEIGHT / 2)]


def test_the_svg_is_well_formed_and_escaped():
    """Test that labels and titles are escaped and the document parses as XML."""
    svg = svgmap.render([("sensor", 'x"><script>', 1, 43.0, 141.0, "<b>&</b>")], "<map>")
    ET.fromstring(svg)  # noqa: S314 - our own output, parsed to prove it is well formed
    assert "<script>" not in svg and "<b>" not in svg
