"""Signing keys are sealed at rest with the key-encryption key."""

from __future__ import annotations

import json

import pytest
from alembic import command
from joserfc.jwk import RSAKey
from sqlalchemy import create_engine
from sqlalchemy import text

from idp import create_app
from idp.cli.db import alembic_config
from idp.config import Settings
from idp.config import SettingsError
from idp.extensions import db
from idp.keys import crypto
from idp.keys import service as keys
from idp.keys.models import SigningKey
from tests.helpers.app import TEST_SETTINGS


def test_private_keys_are_not_stored_in_clear(app, client):
    """Test that the database holds no private key member, only a sealed blob."""
    client.get("/jwks.json")
    row = db.session.query(SigningKey).first()
    assert '"d"' not in row.private_jwk_sealed and "private" not in row.private_jwk_sealed
    assert crypto.unseal(row.private_jwk_sealed)["d"]


def test_a_different_kek_cannot_unseal(app, client, migrated):
    """Test that a key sealed under one KEK is refused under another, clearly."""
    client.get("/jwks.json")
    sealed = db.session.query(SigningKey).first().private_jwk_sealed
    db.session.rollback()
    other = create_app({**TEST_SETTINGS, "database_url": migrated,
                        "key_encryption_key": "A" * 43 + "="})
    with other.app_context(), pytest.raises(crypto.KeyDecryptionError):
        crypto.unseal(sealed)


def test_production_requires_a_kek():
    """Test that production refuses to start without IDP_KEY_ENCRYPTION_KEY."""
    base = {"environment": "production", "issuer": "https://id.example.jp",
            "secret_key": "s" * 40, "smtp_url": "smtps://mail.example.jp"}
    with pytest.raises(SettingsError, match="key_encryption_key"):
        Settings.load(base, environ={})
    with pytest.raises(SettingsError, match="Fernet"):
        Settings.load({**base, "key_encryption_key": "short"}, environ={})


def test_migration_seals_existing_clear_keys(tmp_path):
    """Test that upgrading seals keys written before sealing existed."""
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    config = alembic_config(url)
    command.upgrade(config, "c4f1e2a9b7d3")
    jwk = RSAKey.generate_key(2048, private=True).as_dict(private=True, kid="old", alg="RS256")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at, "
            "activates_at) VALUES ('old', 'RS256', :p, :q, '2026-11-01 00:00:00', "
            "'2026-11-01 00:00:00')"), {"p": json.dumps(jwk), "q": json.dumps({"kid": "old"})})
    command.upgrade(config, "head")
    app = create_app({**TEST_SETTINGS, "database_url": url})
    with app.app_context():
        row = db.session.get(SigningKey, "old")
        assert keys.private_key(row).as_dict(private=True)["d"] == jwk["d"]
    engine.dispose()
