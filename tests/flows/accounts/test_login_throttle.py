"""Sign-in throttling: growing delays per account, a cap per address, no lockout."""

from __future__ import annotations

import pytest

from idp.extensions import limiter
from tests import factories
from tests.factories import csrf


@pytest.fixture
def resident(app):
    return factories.resident()


def attempt(client, email, password):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf(page.text)})


def test_repeated_failures_slow_the_account_down(client, resident):
    """Test that after three free failures the account must wait, with Retry-After."""
    statuses = [attempt(client, "hanako@example.jp", "wrong").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 401]
    slowed = attempt(client, "hanako@example.jp", factories.PASSWORD)
    assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1


def test_delays_grow_with_each_failure(app, resident):
    """Test that the imposed delay doubles, up to a cap."""
    from idp.security import throttle

    delays = [throttle.failed("x@example.jp") for _ in range(12)]
    assert delays[:3] == [0, 0, 0]
    assert delays[3:7] == [2, 4, 8, 16]
    assert max(delays) == throttle.MAX_DELAY


def test_the_owner_gets_in_once_the_delay_has_passed(client, resident):
    """Test that the delay ends (never a permanent lockout) and success clears the count."""
    for _ in range(4):
        attempt(client, "hanako@example.jp", "wrong")
    limiter.storage.clear(throttle_block("hanako@example.jp"))  # the 2 s delay elapses
    assert attempt(client, "hanako@example.jp", factories.PASSWORD).status_code == 302
    assert attempt(client, "hanako@example.jp", "wrong").status_code == 401


def throttle_block(email):
    from idp.security import throttle

    return throttle._key(email) + "/block"


def test_unknown_addresses_are_throttled_the_same(client, resident):
    """Test that a 429 does not reveal whether an account exists."""
    for email in ("hanako@example.jp", "nobody@example.jp"):
        for _ in range(4):
            attempt(client, email, "wrong")
    known = attempt(client, "hanako@example.jp", "wrong")
    unknown = attempt(client, "nobody@example.jp", "wrong")
    assert known.status_code == unknown.status_code == 429


def test_other_accounts_are_not_slowed(client, resident):
    """Test that one account's failures do not slow another."""
    factories.resident(email="taro@example.jp")
    for _ in range(5):
        attempt(client, "hanako@example.jp", "wrong")
    assert attempt(client, "taro@example.jp", factories.PASSWORD).status_code == 302


@pytest.mark.parametrize("settings_overrides", [{"login_address_limit": "5 per minute"}])
def test_one_address_is_capped(client, resident, settings_overrides):
    """Test that one client address gets 429 after the per-address limit."""
    emails = [f"guess{i}@example.jp" for i in range(6)]
    statuses = [attempt(client, e, "wrong").status_code for e in emails]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
