"""Fixtures shared by the console, CLI and city-data tests of this folder."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.kiosk import service as kiosks
from tests import factories


@pytest.fixture
def kiosk_id(app):
    """A kiosk at 北2条広場 of C社: its client id."""
    company = factories.company("C社")
    client, _, _ = kiosks.create_kiosk(company, "サイネージ", "北2条広場")
    db.session.commit()
    return client.id
