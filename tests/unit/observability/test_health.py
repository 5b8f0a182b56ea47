"""/healthz and /readyz: quick, side-effect free, and naming the check that failed."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.keys import service as keys
from idp.observability import readiness
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.app import count


@pytest.fixture
def with_keys(app):
    keys.ensure_keys()
    db.session.commit()


def test_healthz_needs_nothing(client):
    """Test that /healthz answers 200 from the process alone."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "alive"}
    assert "Set-Cookie" not in response.headers


def test_ready_with_database_migrations_and_keys(client, with_keys):
    """Test that a migrated database with active keys is ready (Redis not configured)."""
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "signing_key": "ok", "redis": "skipped"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_no_signing_key_is_unready_and_none_is_made(client):
    """Test that without a key /readyz is 503 and does not create the first key itself."""
    from idp.keys.models import SigningKey
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unready"
    assert response.json["checks"]["signing_key"] == "failed: no signing key"
    assert response.json["checks"]["database"] == "ok"
    assert response.headers["Retry-After"] == "5"
    assert count(SigningKey) == 0


def test_migrations_behind_the_code_is_unready(client, with_keys, monkeypatch):
    """Test that a database revision other than the code's head makes the node unready."""
    monkeypatch.setattr(readiness, "code_heads", lambda: frozenset({"a_newer_revision"}))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["migrations"].startswith("failed:")
    assert response.json["checks"]["database"] == "ok"


def test_a_schema_ahead_of_the_code_stays_ready(client, with_keys, monkeypatch):
    """Test that a node of the previous release stays ready once a newer release has
    migrated (a revision it does not know): migrations are expand-then-contract, and a
    rolling upgrade must not pull every old node at once."""
    monkeypatch.setattr(readiness, "code_heads", lambda: frozenset({"an_older_head"}))
    monkeypatch.setattr(readiness, "_known_revisions", lambda: frozenset({"an_older_head"}))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"]["migrations"] == "ok: schema ahead"


@pytest.mark.parametrize("settings_overrides", [{"redis_url": "redis://127.0.0.1:1/0",
                                                 "readiness_timeout_ms": 200}])
def test_unreachable_redis_is_unready(client, with_keys):
    """Test that a configured Redis that does not answer PING makes the node unready."""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("failed: ")
    assert response.json["checks"]["database"] == "ok"


def test_probes_write_nothing_and_set_no_cookie(client, with_keys):
    """Test that probes leave no audit event, no session and no rate-limit trace."""
    before = count(AuditEvent)
    for _ in range(3):
        for path in ("/healthz", "/readyz"):
            response = client.get(path)
            assert "Set-Cookie" not in response.headers
    assert count(AuditEvent) == before


def test_probes_accept_no_other_method(client):
    """Test that probes are GET only (HEAD too, as Flask gives it)."""
    assert client.post("/readyz").status_code == 405
    assert client.head("/healthz").status_code == 200


def test_database_unreachable_is_unready_healthz_still_alive():
    """Test that with no database /readyz is 503 naming the database, /healthz 200."""
    app = create_app({**TEST_SETTINGS, "database_url": "postgresql://nobody@127.0.0.1:1/none"})
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert checks["database"].startswith("failed: ")
    assert checks["migrations"].startswith("failed: ")
    assert "nobody" not in response.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200
