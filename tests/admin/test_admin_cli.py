"""The administration commands: `idp admins`, `idp audit`, and the additions to
`idp companies`, `idp clients` and `idp keys`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from types import SimpleNamespace
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy import text

from idp import secrets
from idp.admin import auth
from idp.admin.models import Admin
from idp.admin.models import AdminSession
from idp.audit import chain
from idp.clients.models import Client
from idp.clients.models import Company
from idp.extensions import db
from idp.keys.models import SigningKey
from tests import factories
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.audit import seal_all
from tests.helpers.audit_guard import lifted


def as_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# ---- idp admins ------------------------------------------------------------------------------

def test_admins_create_prints_a_one_time_enrolment_link(cli):
    """Test `idp admins create --email E --json`: the link's token is stored only as a digest."""
    data = as_json(cli("admins", "create", "--email", "Kanri@Consortium.example.jp", "--json"))
    assert data["email"] == "kanri@consortium.example.jp" and data["status"] == "invited"
    url = urlsplit(data["enrolment_url"])
    assert (url.scheme, url.netloc, url.path) == ("http", "localhost", "/admin/enrol")
    token = parse_qs(url.query)["token"][0]
    admin = db.session.get(Admin, data["id"])
    assert admin.enrolment_digest == secrets.digest(token)
    assert token not in json.dumps([e.data for e in events()])
    (created,) = events("admin:account:create")
    assert created.actor == "cli" and created.data["target_admin"] == data["id"]


def test_admins_create_refuses_a_duplicate_or_bad_email(cli):
    cli("admins", "create", "--email", "a@consortium.example.jp")
    for email in ("a@consortium.example.jp", "not-an-email"):
        result = cli("admins", "create", "--email", email)
        assert result.exit_code == 1
    assert len(db.session.scalars(select(Admin)).all()) == 1
    assert [e.data["command"] for e in events("cli:command:refused")] == ["admins create"] * 2


def test_admins_list_reset_and_disable(cli):
    """Test list, reset (new link, old one dead, sessions ended) and disable."""
    first = as_json(cli("admins", "create", "--email", "a@consortium.example.jp", "--json"))
    listed = as_json(cli("admins", "list", "--json"))["admins"]
    assert [(a["email"], a["status"]) for a in listed] == [("a@consortium.example.jp",
                                                           "invited")]
    reset = as_json(cli("admins", "reset", "a@consortium.example.jp", "--json"))
    assert reset["enrolment_url"] != first["enrolment_url"]
    old_token = parse_qs(urlsplit(first["enrolment_url"]).query)["token"][0]
    assert db.session.scalar(select(Admin).where(
        Admin.enrolment_digest == secrets.digest(old_token))) is None
    disabled = as_json(cli("admins", "disable", first["id"], "--json"))
    assert disabled["status"] == "disabled"
    assert cli("admins", "disable", first["id"]).exit_code == 1
    assert cli("admins", "reset", "nobody@example.jp").exit_code == 1


def test_disable_ends_sessions(cli):
    """Test that `idp admins disable` ends the admin's console sessions at once."""
    admin = enrolled_admin()
    auth.start_session(db.session.get(Admin, admin.id))
    db.session.commit()
    assert as_json(cli("admins", "disable", admin.email, "--json"))["status"] == "disabled"
    (row,) = db.session.scalars(select(AdminSession))
    assert row.ended_at is not None


# ---- idp companies ----------------------------------------------------------------------------

def test_companies_list_show_rename_and_contract(cli):
    company_id = as_json(cli("companies", "create", "--name", "A社", "--json"))["id"]
    assert as_json(cli("companies", "rename", company_id, "--name", "A社ホールディングス",
                       "--json"))["name"] == "A社ホールディングス"
    data = as_json(cli("companies", "contract", company_id, "--reference", "CONS-9",
                       "--version", "2.0", "--signed-on", "2026-04-01", "--json"))
    assert data["signed_on"] == "2026-04-01"
    shown = as_json(cli("companies", "show", company_id, "--json"))
    assert shown["contract"] == {"reference": "CONS-9", "version": "2.0",
                                 "signed_on": "2026-04-01"}
    listed = as_json(cli("companies", "list", "--json"))["companies"]
    assert [c["id"] for c in listed] == [company_id]
    result = cli("companies", "contract", company_id, "--reference", "CONS-9", "--version",
                 "2.0", "--signed-on", "2026-04-01")
    assert result.exit_code == 1 and "already recorded" in result.output


def test_companies_suspend_unknown_is_refused_and_audited(cli):
    """Test that suspending an unknown company exits 1, says so, and the refusal is audited."""
    result = cli("companies", "suspend", "co_UNKNOWN")
    assert result.exit_code == 1 and "no company co_UNKNOWN" in result.output
    (refusal,) = events("cli:command:refused")
    assert refusal.data == {"command": "companies suspend", "reason": "no company co_UNKNOWN"}
    assert events("company:suspend") == []


def test_companies_revoke_needs_yes_and_is_final(cli):
    company_id = factories.company()
    rp = factories.rp(company_id)
    result = cli("companies", "revoke", company_id)
    assert result.exit_code == 1 and "--yes" in result.output
    assert db.session.get(Company, company_id).status == "active"
    assert as_json(cli("companies", "revoke", company_id, "--yes", "--json"))["status"] == \
        "revoked"
    assert db.session.get(Client, rp.client_id).revoked_at is not None
    assert cli("companies", "reinstate", company_id).exit_code == 1


# ---- idp clients -------------------------------------------------------------------------------

def test_clients_list_show_update_and_rotate(cli, client):
    rp = factories.rp()
    listed = as_json(cli("clients", "list", "--company", rp.company_id, "--json"))["clients"]
    assert [c["client_id"] for c in listed] == [rp.client_id]
    shown = as_json(cli("clients", "show", rp.client_id, "--json"))
    assert shown["redirect_uris"] == [rp.redirect_uri] and rp.client_secret not in json.dumps(shown)
    updated = as_json(cli("clients", "update", rp.client_id, "--redirect-uri",
                          "https://rp.example.jp/v2/callback", "--scope", "openid",
                          "--scope", "email", "--backchannel-logout-uri",
                          "https://rp.example.jp/bcl", "--verified-claims", "--json"))
    assert updated["changed"] == ["backchannel_logout_uri", "redirect_uris", "scopes",
                                  "verified_claims_allowed"]
    row = db.session.get(Client, rp.client_id)
    assert row.redirect_uris == ["https://rp.example.jp/v2/callback"]
    assert row.scopes == ["openid", "email"] and row.verified_claims_allowed
    assert row.grant_types == ["authorization_code", "refresh_token"]  # not given: kept
    assert as_json(cli("clients", "update", rp.client_id, "--json"))["changed"] == []
    rotated = as_json(cli("clients", "rotate-secret", rp.client_id, "--json"))
    db.session.expire_all()
    row = db.session.get(Client, rp.client_id)
    assert row.check_client_secret(rotated["client_secret"])
    assert not row.check_client_secret(rp.client_secret)


def test_clients_update_refuses_bad_input_and_revoked_clients(cli):
    rp = factories.rp()
    result = cli("clients", "update", rp.client_id, "--redirect-uri", "http://rp.example.jp/x")
    assert result.exit_code == 1 and "https" in result.output
    cli("clients", "revoke", rp.client_id)
    result = cli("clients", "update", rp.client_id, "--name", "x")
    assert result.exit_code == 1 and "revoked" in result.output
    result = cli("clients", "rotate-secret", rp.client_id)
    assert result.exit_code == 1
    assert db.session.get(Client, rp.client_id).name == "XXXサービス"


def test_clients_rotate_secret_of_a_public_client_is_refused(cli):
    rp = factories.rp(public=True)
    result = cli("clients", "rotate-secret", rp.client_id)
    assert result.exit_code == 1 and "has no secret" in result.output


# ---- idp keys retire -----------------------------------------------------------------------------

def test_keys_retire(cli, client):
    client.get("/jwks.json")
    rs256 = db.session.scalar(select(SigningKey).where(SigningKey.alg == "RS256"))
    data = as_json(cli("keys", "retire", rs256.kid, "--json"))
    assert data["replacement"] and data["replacement"] != rs256.kid
    assert rs256.kid in [k["kid"] for k in client.get("/jwks.json").json["keys"]]
    assert as_json(cli("keys", "retire", rs256.kid, "--drop", "--json"))["dropped"] is True
    assert rs256.kid not in [k["kid"] for k in client.get("/jwks.json").json["keys"]]
    assert cli("keys", "retire", "no-such-kid").exit_code == 1


def test_keys_retire_takes_a_kid_that_starts_with_a_dash(cli):
    """Test that a thumbprint beginning with "-" (one kid in 64) is read as the kid, before
    or after the options, not refused as an unknown option."""
    for args in (("-Kno-such-kid",), ("-Kno-such-kid", "--json"), ("--json", "-Kno-such-kid")):
        result = cli("keys", "retire", *args)
        assert result.exit_code == 1, result.output
        assert "No such option" not in result.output


# ---- idp audit -------------------------------------------------------------------------------------

def test_audit_verify_prints_the_head_and_checks_anchors(cli):
    factories.company()
    factories.company()
    unsealed = as_json(cli("audit", "verify", "--json"))
    assert unsealed["ok"] is True and unsealed["events"] == 0
    assert unsealed["unsealed"]["count"] == 2
    sealed = as_json(cli("audit", "seal", "--json"))
    # Three entries (two companies, the verification); PostgreSQL may leave some for a
    # moment while other transactions on the server are open (tests.helpers.audit).
    assert sealed["events"] + sealed["unsealed"] == 3 and sealed["batches"] <= 1
    seal_all()
    data = as_json(cli("audit", "verify", "--json"))
    assert data["ok"] is True and data["guard_installed"] is True
    # One head per sealing round: one, or two when the server held some entries back.
    assert 1 <= data["heads"]["count"] == data["heads"]["signed"] <= 2
    assert data["unsealed"]["count"] == 0
    anchor = f"{data['head']['seq']}:{data['head']['digest']}"
    seal_all()  # the first verification's record
    text_result = cli("audit", "verify", "--expect", anchor)
    assert text_result.exit_code == 0
    assert f"head {data['head']['seq'] + 1}:" in text_result.output  # the first run is audited
    assert "unsealed: none" in text_result.output
    assert "unsealed: 1 entries" in cli("audit", "verify").output  # the previous run
    bad = cli("audit", "verify", "--expect", f"{data['head']['seq']}:{'0' * 64}")
    assert bad.exit_code == 1 and "BROKEN" in bad.output
    malformed = cli("audit", "verify", "--expect", "12:abc")
    assert malformed.exit_code == 1 and "SEQ:DIGEST" in malformed.output


def test_audit_verify_names_the_first_broken_link(cli):
    for i in range(4):
        factories.company(f"会社{i}")
    seal_all()
    db.session.rollback()
    with db.engine.begin() as conn, lifted(conn):
        conn.execute(text("UPDATE audit_events SET company_id = 'co_FORGED00000' WHERE seq = 3"))
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "BROKEN at event 3" in result.output
    data = json.loads(cli("audit", "verify", "--json").output)
    assert data["first_break"]["seq"] == 3 and data["events"] == 2


def test_audit_export_jsonl_can_be_verified_elsewhere(cli):
    """Test that the JSON lines carry what the digests cover: recomputed from the copy alone."""
    factories.rp()
    seal_all()
    result = cli("audit", "export")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.output.splitlines()]
    prev = chain.GENESIS
    for item in lines:
        personal = chain.personal_digest(item["personal_salt"], item["resident_id"], item["ip"],
                                         item["user_agent"])
        assert personal == item["personal_digest"]
        row = SimpleNamespace(**{**item, "at": dt.datetime.fromisoformat(item["at"])})
        assert chain.event_digest(prev, row) == item["digest"]
        prev = item["digest"]
    # Only what came after: the record of the first export itself, not sealed yet.
    later = cli("audit", "export", "--after", str(lines[-1]["seq"]))
    after = [json.loads(line) for line in later.output.splitlines()]
    assert [(item["tag"], item["seq"], item["digest"]) for item in after] == [
        ("audit:export", None, None)]


def test_audit_export_csv_after_a_seq(cli):
    """Test the CSV export and --after: only later events, formula-like cells neutralised."""
    factories.company("=1+1")
    factories.company("B社")
    seal_all()
    result = cli("audit", "export", "--format", "csv", "--after", "1")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["seq"], r["tag"]) for r in rows] == [("2", "company:create")]
    everything = list(csv.DictReader(io.StringIO(cli("audit", "export", "--format",
                                                      "csv").output)))
    assert json.loads(everything[0]["data"].lstrip("'"))["name"] == "=1+1"
    assert everything[0]["data"].startswith("{")  # JSON cells do not start a formula
