"""Coordinates of things the public is told about (kiosks, sensors): WGS 84 degrees."""

from __future__ import annotations

import math


def coordinates(latitude, longitude) -> tuple[float | None, float | None]:
    """Both or neither, finite, in range; raises ValueError with a message to show."""
    if latitude is None and longitude is None:
        return None, None
    if latitude is None or longitude is None:
        raise ValueError("give both latitude and longitude, or neither")
    try:
        latitude, longitude = float(latitude), float(longitude)
    except (TypeError, ValueError):
        raise ValueError("latitude and longitude must be numbers") from None
    if not (math.isfinite(latitude) and math.isfinite(longitude)) \
            or not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise ValueError("latitude must be -90 to 90 and longitude -180 to 180")
    return latitude, longitude
