"""argon2 hashes wait their turn: at most ``argon2_concurrency`` run at once in a process
(each holds argon2_memory_cost; docs/performance.md)."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from idp.accounts import passwords
from idp.config import SettingsError
from tests.helpers.app import TEST_SETTINGS


def most_at_once(app, monkeypatch, concurrency: int, callers: int = 6) -> int:
    """Run ``callers`` verifications in threads against a hasher that notes how many run
    at once; the most it saw."""
    running, most, lock = [0], [0], threading.Lock()
    started = threading.Barrier(callers)
    # Hashes meet in groups of ``concurrency`` before they finish: with the places taken
    # in full, that many are inside at once, and the gate must keep out the rest.
    together = threading.Barrier(concurrency, timeout=30)

    class Hasher:
        def verify(self, password_hash, password):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            together.wait()
            with lock:
                running[0] -= 1
            return True

    monkeypatch.setattr(passwords, "_hasher", Hasher)
    settings = dataclasses.replace(app.extensions["idp.settings"],
                                   argon2_concurrency=concurrency)
    monkeypatch.setattr(passwords.config, "settings", lambda: settings)

    def call():
        with app.app_context():
            started.wait()
            assert passwords.verify("hash", "password")

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return most[0]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_at_most_argon2_concurrency_hashes_run_at_once(app, monkeypatch, concurrency):
    """Test that six sign-ins at once run their hashes at most ``argon2_concurrency`` at a
    time, and every one of them is verified."""
    assert most_at_once(app, monkeypatch, concurrency) == concurrency


def test_argon2_concurrency_must_be_positive():
    """Test that zero places for a hash is refused at startup."""
    from idp.config import Settings

    with pytest.raises(SettingsError, match="argon2_concurrency"):
        Settings(**{**TEST_SETTINGS, "argon2_concurrency": 0}).validate()
