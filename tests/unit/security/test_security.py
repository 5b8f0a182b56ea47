"""The shared security vocabulary (idp.security): one list of algorithms, one lockout rule."""

from __future__ import annotations

import datetime as dt

from idp.config import Settings
from idp.db import utcnow
from idp.oauth.discovery import metadata
from idp.security.algorithms import SIGNING_ALGS
from idp.security.lockout import Lockout

SETTINGS = Settings.load({"environment": "test", "database_url": "sqlite://",
                          "issuer": "https://id.example.jp"})


def test_discovery_advertises_the_signing_algorithms():
    """Test that every *_signing_alg_values_supported member is the one list."""
    document = metadata(SETTINGS)
    members = [k for k in document if k.endswith("_signing_alg_values_supported")]
    assert len(members) == 4
    assert all(document[k] == list(SIGNING_ALGS) == ["RS256", "ES256"] for k in members)


def test_lockout_counts_failures_inside_its_window():
    """Test that the account locks at max_failures failures younger than the window."""
    lockout = Lockout(3, dt.timedelta(minutes=15))
    seen = []

    def failures(count):
        def since(at):
            seen.append(at)
            return count
        return since

    assert not lockout.locked(failures(2))
    assert lockout.locked(failures(3))
    assert abs((utcnow() - dt.timedelta(minutes=15)) - seen[-1]) < dt.timedelta(seconds=5)
