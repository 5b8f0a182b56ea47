"""Passkey challenges (idp.accounts.passkeys): stored server-side, bound to their
ceremony and person, short-lived, and consumed once."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from idp.accounts import passkeys
from idp.accounts.passkeys import PasskeyError
from idp.extensions import db


def test_a_challenge_is_taken_once(app):
    """Test that the second take of one challenge is refused."""
    challenge_id, challenge = passkeys.new_challenge(passkeys.SIGN_IN)
    assert passkeys.take_challenge(challenge_id, passkeys.SIGN_IN) == challenge
    with pytest.raises(PasskeyError):
        passkeys.take_challenge(challenge_id, passkeys.SIGN_IN)


@pytest.mark.parametrize(("purpose", "subject"), [
    (passkeys.REGISTER, None), (passkeys.SIGN_IN, "SOMEONE"), ("admin_sign_in", None)])
def test_a_challenge_serves_only_its_ceremony(app, purpose, subject):
    """Test that a sign-in challenge cannot register, nor serve another person or console."""
    challenge_id, _ = passkeys.new_challenge(passkeys.SIGN_IN)
    with pytest.raises(PasskeyError):
        passkeys.take_challenge(challenge_id, purpose, subject)


def test_a_challenge_expires_after_three_minutes(app):
    """Test the lifetime, and that expired rows are purged by the next new challenge."""
    challenge_id, _ = passkeys.new_challenge(passkeys.SIGN_IN)
    later = dt.datetime.now(dt.UTC) + passkeys.CHALLENGE_TTL + dt.timedelta(seconds=1)
    with freeze_time(later):
        with pytest.raises(PasskeyError):
            passkeys.take_challenge(challenge_id, passkeys.SIGN_IN)
        passkeys.new_challenge(passkeys.SIGN_IN)
        db.session.expire_all()
        from idp.accounts.models import PasskeyChallenge  # noqa: PLC0415
        assert db.session.get(PasskeyChallenge, challenge_id) is None


@pytest.mark.parametrize("challenge_id", [None, "", "x", 5, "y" * 100])
def test_bad_challenge_ids_are_refused(app, challenge_id):
    with pytest.raises(PasskeyError):
        passkeys.take_challenge(challenge_id, passkeys.SIGN_IN)
