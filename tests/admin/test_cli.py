"""The `idp` command line contract, run through click's CliRunner on idp.cli.main.

Each command builds its own app from IDP_* variables, pointed here at the
test database; the test's own session ends its transaction before every
command (SQLite transactions begin IMMEDIATE) and reads what it committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3

import pytest
from sqlalchemy import select
from sqlalchemy import text

from idp.accounts.models import Resident
from idp.clients.models import Client
from idp.clients.models import Company
from idp.db import utcnow
from idp.extensions import db
from idp.keys import service as keys
from idp.keys.models import SigningKey
from idp.oauth.tokens import by_access_token
from idp.security.algorithms import SIGNING_ALGS
from tests.factories import Browser
from tests.helpers.app import count
from tests.helpers.cli import run


def one_json_object(result) -> dict:
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


@pytest.fixture
def company_id(cli) -> str:
    return one_json_object(cli("companies", "create", "--name", "A社", "--json"))["id"]


def client_credentials_token(client, client_id: str, secret: str):
    return client.post("/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, secret))


@pytest.fixture
def machine_client(cli, company_id) -> dict:
    """A client_credentials-only client registered through the CLI."""
    return one_json_object(cli("clients", "create", "--company", company_id, "--name", "集計",
                               "--grant-type", "client_credentials", "--json"))


# ---- db -----------------------------------------------------------------------

def test_db_upgrade_creates_the_schema_on_an_empty_sqlite_file(tmp_path, built_apps):
    """Test that `idp db upgrade` builds every table in a new SQLite file."""
    path = tmp_path / "x.sqlite3"
    result = run(f"sqlite:///{path}", "db", "upgrade")
    assert result.exit_code == 0, (result.output, result.exception)
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type = 'table'")}
    assert {"alembic_version", "companies", "clients", "residents", "signing_keys"} <= tables


def test_db_check_passes_after_upgrade(tmp_path, built_apps):
    """Test that `idp db check` succeeds after `db upgrade`: models and migrations agree."""
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    assert run(url, "db", "upgrade").exit_code == 0
    result = run(url, "db", "check")
    assert result.exit_code == 0, (result.output, result.exception)


def test_db_check_passes_on_the_test_database(cli):
    """Test that `idp db check` finds no drift on this run's database (SQLite or PostgreSQL)."""
    result = cli("db", "check")
    assert result.exit_code == 0, (result.output, result.exception)


def test_db_check_fails_before_upgrade(tmp_path, built_apps):
    """Test that `idp db check` exits non-zero on a database that was never migrated."""
    result = run(f"sqlite:///{tmp_path / 'empty.sqlite3'}", "db", "check")
    assert result.exit_code != 0


# ---- companies ------------------------------------------------------------------

def test_companies_create_prints_one_json_object(cli):
    """Test that `companies create --json` prints exactly one JSON object with the new id."""
    data = one_json_object(cli("companies", "create", "--name", "A社", "--json"))
    assert data["name"] == "A社"
    assert data["status"] == "active"
    assert db.session.get(Company, data["id"]).name == "A社"


def test_companies_create_without_json_prints_a_line(cli):
    """Test that without --json the command prints a human-readable line naming the company."""
    result = cli("companies", "create", "--name", "B社")
    assert result.exit_code == 0
    assert "B社" in result.stdout
    assert not result.stdout.lstrip().startswith("{")


def test_companies_suspend_cuts_off_its_clients(cli, client, company_id, machine_client):
    """Test that after `companies suspend` the company's clients get invalid_client."""
    client_id, secret = machine_client["client_id"], machine_client["client_secret"]
    assert client_credentials_token(client, client_id, secret).status_code == 200
    data = one_json_object(cli("companies", "suspend", company_id, "--json"))
    assert data == {"id": company_id, "status": "suspended"}
    response = client_credentials_token(client, client_id, secret)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_companies_suspend_unknown_id_fails_clearly(cli):
    """Test that suspending an unknown company exits non-zero and names the id."""
    result = cli("companies", "suspend", "co_NOSUCHCOMPANY")
    assert result.exit_code != 0
    assert "no company co_NOSUCHCOMPANY" in result.stderr
    assert "Traceback" not in result.output


# ---- clients --------------------------------------------------------------------

def test_clients_create_prints_id_and_secret(cli, company_id):
    """Test that `clients create --json` prints exactly client_id and client_secret."""
    data = one_json_object(cli("clients", "create", "--company", company_id, "--name", "N",
                               "--redirect-uri", "https://rp/cb", "--scope", "openid",
                               "--scope", "email", "--json"))
    assert set(data) == {"client_id", "client_secret"}
    row = db.session.get(Client, data["client_id"])
    assert row.company_id == company_id
    assert row.redirect_uris == ["https://rp/cb"]
    assert row.scopes == ["openid", "email"]


def test_clients_create_stores_only_a_digest_of_the_secret(cli, company_id):
    """Test that the clients row holds the secret's SHA-256 digest and never the secret."""
    data = one_json_object(cli("clients", "create", "--company", company_id, "--name", "N",
                               "--redirect-uri", "https://rp/cb", "--json"))
    secret = data["client_secret"]
    row = db.session.execute(text("SELECT * FROM clients WHERE id = :id"),
                             {"id": data["client_id"]}).mappings().one()
    assert row["secret_digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(value) for value in row.values())


def test_clients_create_public_has_no_secret(cli, company_id):
    """Test that `--public` prints no client_secret and registers auth method none."""
    data = one_json_object(cli("clients", "create", "--company", company_id, "--name", "App",
                               "--redirect-uri", "https://rp/cb", "--public", "--json"))
    assert set(data) == {"client_id"}
    row = db.session.get(Client, data["client_id"])
    assert row.is_public
    assert row.secret_digest is None
    assert row.token_endpoint_auth_method == "none"


def test_clients_create_code_grant_without_redirect_uri_fails(cli, company_id):
    """Test that an authorization_code client without --redirect-uri is refused with a message."""
    result = cli("clients", "create", "--company", company_id, "--name", "N", "--json")
    assert result.exit_code != 0
    assert "--redirect-uri" in result.stderr
    assert result.stdout == ""
    assert count(Client) == 0


def test_clients_create_http_redirect_uri_on_public_host_fails(cli, company_id):
    """Test that a non-loopback http redirect URI is refused."""
    result = cli("clients", "create", "--company", company_id, "--name", "N",
                 "--redirect-uri", "http://rp.example.jp/cb")
    assert result.exit_code != 0
    assert "https" in result.stderr
    assert count(Client) == 0


def test_clients_create_for_unknown_company_fails(cli):
    """Test that registering a client for an unknown company exits non-zero naming it."""
    result = cli("clients", "create", "--company", "co_NOPE", "--name", "N",
                 "--redirect-uri", "https://rp/cb")
    assert result.exit_code != 0
    assert "no company co_NOPE" in result.stderr


def test_client_credentials_client_needs_no_redirect_uri(client, machine_client):
    """Test that a client_credentials-only client registers without a redirect URI and
    gets a token."""
    row = db.session.get(Client, machine_client["client_id"])
    assert row.redirect_uris == []
    assert row.grant_types == ["client_credentials"]
    response = client_credentials_token(client, machine_client["client_id"],
                                        machine_client["client_secret"])
    assert response.status_code == 200, response.text
    assert response.json["token_type"] == "Bearer"


def test_clients_revoke_cuts_the_client_off(cli, client, machine_client):
    """Test that after `clients revoke` the client gets invalid_client at the token endpoint."""
    client_id, secret = machine_client["client_id"], machine_client["client_secret"]
    assert client_credentials_token(client, client_id, secret).status_code == 200
    data = one_json_object(cli("clients", "revoke", client_id, "--json"))
    assert data["client_id"] == client_id
    assert data["revoked_at"]
    response = client_credentials_token(client, client_id, secret)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


def test_clients_revoke_kills_issued_tokens(cli, client, machine_client):
    """Test that a token issued before `clients revoke` is inactive at introspection after it."""
    client_id, secret = machine_client["client_id"], machine_client["client_secret"]
    access_token = client_credentials_token(client, client_id, secret).json["access_token"]
    assert cli("clients", "revoke", client_id).exit_code == 0
    assert by_access_token(access_token).revoked_at is not None


def test_clients_revoke_unknown_id_fails_clearly(cli):
    """Test that revoking an unknown client exits non-zero and names the id."""
    result = cli("clients", "revoke", "mc_NOSUCHCLIENT")
    assert result.exit_code != 0
    assert "no client mc_NOSUCHCLIENT" in result.stderr


# ---- users ----------------------------------------------------------------------

USER_ARGS = ("users", "create", "--email", "hanako@example.jp", "--password", "sapporo-2026",
             "--family-name", "札幌", "--given-name", "花子", "--birth-year", "1990",
             "--gender", "female", "--postal-code", "060-0042", "--locality", "札幌市中央区",
             "--email-verified", "--json")


def test_users_create_prints_the_new_id(cli):
    """Test that `users create --json` prints one JSON object with the resident's id."""
    data = one_json_object(cli(*USER_ARGS))
    assert data["email"] == "hanako@example.jp"
    resident = db.session.get(Resident, data["id"])
    assert (resident.family_name, resident.given_name, resident.birth_year, resident.gender,
            resident.postal_code, resident.locality) == (
        "札幌", "花子", 1990, "female", "060-0042", "札幌市中央区")
    assert resident.email_verified is True


def test_users_create_stores_an_argon2id_hash(cli):
    """Test that the password is stored as an argon2id hash, never in the clear."""
    data = one_json_object(cli(*USER_ARGS))
    stored = db.session.scalar(select(Resident.password_hash).where(Resident.id == data["id"]))
    assert stored.startswith("$argon2id$")
    assert "sapporo-2026" not in stored


def test_users_create_resident_can_sign_in(cli, client):
    """Test that a resident created by the CLI can sign in on the login page."""
    one_json_object(cli(*USER_ARGS))
    response = Browser(client).login("hanako@example.jp", "sapporo-2026")
    assert response.status_code == 302


def test_users_create_invalid_postal_code_fails(cli):
    """Test that an invalid postal code exits non-zero with a message and creates nobody."""
    args = list(USER_ARGS)
    args[args.index("060-0042")] = "0600042"
    result = cli(*args)
    assert result.exit_code != 0
    assert "postal_code" in result.stderr
    assert count(Resident) == 0


def test_users_create_duplicate_email_fails(cli):
    """Test that a second resident with the same email is refused."""
    one_json_object(cli(*USER_ARGS))
    result = cli(*USER_ARGS)
    assert result.exit_code != 0
    assert "already registered" in result.stderr
    assert count(Resident) == 1


# ---- keys -----------------------------------------------------------------------

def test_keys_rotate_publishes_new_keys_that_sign_later(cli, client):
    """Test that `keys rotate --json` adds RS256 and ES256 keys published now, signing after
    the publish delay."""
    before = utcnow()
    data = one_json_object(cli("keys", "rotate", "--json"))
    assert sorted(k["alg"] for k in data["keys"]) == ["ES256", "RS256"]
    published = {k["kid"] for k in client.get("/jwks.json").json["keys"]}
    for key in data["keys"]:
        assert key["kid"] in published
        activates = dt.datetime.fromisoformat(key["activates_at"])
        assert activates >= before + dt.timedelta(seconds=3600)
        assert keys.signing_key(key["alg"]).kid != key["kid"]


def test_keys_rotate_now_signs_at_once(cli):
    """Test that `keys rotate --now --json` adds keys that sign immediately."""
    old = {alg: keys.signing_key(alg).kid for alg in SIGNING_ALGS}
    data = one_json_object(cli("keys", "rotate", "--now", "--json"))
    for key in data["keys"]:
        assert dt.datetime.fromisoformat(key["activates_at"]) <= utcnow()
        assert keys.signing_key(key["alg"]).kid == key["kid"]
        assert key["kid"] != old[key["alg"]]
    retired = db.session.scalars(select(SigningKey).where(SigningKey.kid.in_(old.values())))
    assert all(row.retired_at is not None for row in retired)


def test_keys_list_reports_states(cli):
    """Test that `keys list --json` reports every key with its state."""
    one_json_object(cli("keys", "rotate", "--now", "--json"))
    one_json_object(cli("keys", "rotate", "--json"))
    data = one_json_object(cli("keys", "list", "--json"))
    states = sorted(row["state"] for row in data["keys"])
    assert states == ["active", "active", "published", "published"]
