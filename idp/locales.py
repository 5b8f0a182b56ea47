"""The languages Machi ID speaks: Japanese first, English second.

Plain constants at the bottom of the house, so that mail, pages and the
protocol's ``ui_locales`` all agree without importing a web package.
"""

from __future__ import annotations

LOCALES = ("ja", "en")
DEFAULT = "ja"
