"""The backup procedure of docs/operations.md, run for real: pg_dump, pg_restore, and a node
pointed at the copy.

State is built through the real services and endpoints (a resident, a consent given on
the consent page, tokens from the code flow, signing keys including a rotation, the audit
events all of that records). The test database is dumped with ``pg_dump -Fc`` and
restored with ``pg_restore`` into a fresh database; an app on the copy must then:

- say the access token issued before the dump is still active (introspection), and serve
  userinfo with it; the refresh token still refreshes;
- remember the consent (the same request signs in without asking again);
- publish the very same JWKS, and sign new ID tokens with a key from it (the private keys
  are sealed under the key-encryption key, which the operator keeps apart from the dump);
- pass ``idp audit verify`` through the CLI, through the head recorded before the dump
  (``--expect``), with the append-only triggers restored too.

The restored database is dropped at the end. PostgreSQL only: SQLite has no pg_dump.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psycopg
import pytest

from idp import create_app
from idp.extensions import db
from idp.keys import service as keys
from tests import factories
from tests.helpers.app import PG_URL
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.app import IsolatedClient
from tests.helpers.audit import seal_all
from tests.helpers.cli import run
from tests.helpers.oauth import introspect
from tests.helpers.oauth import jwt_claims
from tests.helpers.oauth import refresh
from tests.helpers.oauth import userinfo

pytestmark = [
    pytest.mark.skipif(not PG_URL, reason="backups are pg_dump/pg_restore of PostgreSQL; the "
                                          "SQLite run has no dump to restore"),
    pytest.mark.skipif(not (shutil.which("pg_dump") and shutil.which("pg_restore")),
                       reason="needs pg_dump and pg_restore (postgresql-client)"),
]

SCOPE = "openid name email offline_access"


@pytest.fixture
def restored_url(migrated):
    """The URL of a fresh, empty database next to the test database; dropped afterwards."""
    name = f"machi_restore_{secrets.token_hex(6)}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(migrated)._replace(path=f"/{name}"))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_dump_restored_into_a_fresh_database_keeps_tokens_consents_keys_and_audit_chain(
        app, client, migrated, restored_url, built_apps, tmp_path):
    # State through the real services: a resident consents at the consent page and gets
    # tokens; the keys rotate (published, not yet signing: JWKS holds both generations).
    factories.resident()
    rp = factories.rp(scopes=factories.ALL_SCOPES)
    tokens = factories.tokens(client, rp, scope=SCOPE)
    assert _json(run(migrated, "keys", "rotate", "--json"))["keys"]
    # What idp worker does every second; its heads are signed with the ES256 signing key,
    # made here if the IdP had none yet, so the JWKS is read after it.
    seal_all()  # as `idp audit seal`, until the shared server's older transactions let it
    keys.forget_jwks_cache()
    jwks = client.get("/jwks.json").json
    assert len(jwks["keys"]) >= 3  # the signing RS256 key and both new ones
    head = _json(run(migrated, "audit", "verify", "--json"))
    assert head["ok"] is True and head["events"] > 0
    anchor = f"{head['head']['seq']}:{head['head']['digest']}"

    # The nightly dump, then a restore into a new database (docs/operations.md).
    dump = tmp_path / "machi_id.dump"
    subprocess.run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), "-d", migrated],  # noqa: S603,S607
                   check=True, capture_output=True)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "-d", restored_url,  # noqa: S603,S607
                    str(dump)], check=True, capture_output=True)

    # The audit chain survives, through the head written down before the dump.
    verified = _json(run(restored_url, "audit", "verify", "--expect", anchor, "--json"))
    assert verified["ok"] is True
    assert verified["events"] >= head["events"]
    assert verified["guard_installed"] is True
    # The restored schema is the migrated head, models and migrations in step.
    checked = run(restored_url, "db", "check")
    assert checked.exit_code == 0, checked.output

    restored = create_app({**TEST_SETTINGS, "database_url": restored_url,
                           "outbox_dir": str(tmp_path / "outbox")})
    restored.test_client_class = IsolatedClient
    try:
        with restored.app_context():
            copy = restored.test_client()

            # Keys: the same JWKS, and new ID tokens are signed by a key in it.
            assert copy.get("/jwks.json").json == jwks

            # Tokens: the access token is still active and serves userinfo.
            answer = introspect(copy, rp, tokens["access_token"])
            assert answer.status_code == 200
            assert answer.json["active"] is True
            assert answer.json["sub"] == jwt_claims(tokens["id_token"])["sub"]
            assert userinfo(copy, tokens["access_token"]).status_code == 200

            # Consents: the same request is not asked again; it goes straight back with a code.
            browser = factories.Browser(copy)
            verifier, challenge = factories.pkce_pair()
            first = browser.authorize(rp, scope=SCOPE, code_challenge=challenge,
                                      code_challenge_method="S256")
            interaction = factories.query(first.headers["Location"])["interaction"]
            signed_in = browser.login(interaction=interaction)
            back = copy.get(signed_in.headers["Location"])
            assert back.status_code == 302
            assert back.headers["Location"].startswith(rp.redirect_uri), back.headers["Location"]
            code = factories.query(back.headers["Location"])["code"]
            again = factories.exchange(copy, rp, code, verifier)
            assert again.status_code == 200, again.text
            header = json.loads(_b64(again.json["id_token"].split(".")[0]))
            assert header["kid"] in {k["kid"] for k in jwks["keys"]}

            # The refresh token from before the dump still refreshes.
            assert refresh(copy, rp, tokens["refresh_token"]).status_code == 200
            db.session.remove()
    finally:
        with restored.app_context():
            db.engine.dispose()


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
