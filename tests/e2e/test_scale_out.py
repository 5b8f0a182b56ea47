"""Two `idp serve` nodes behind nginx (TLS), sharing PostgreSQL and Redis.

The cluster is the one deploy/scale_out.py runs: nginx balances over the nodes
on one TLS port and also has one TLS port per node, so a test can choose the
node (``node(0)``, ``node(1)``). Everything a node keeps lives in the shared
database or Redis, so it must not matter which node answers.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psycopg
import pytest
import redis
import requests
from alembic import command
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from deploy.scale_out import Cluster
from deploy.scale_out import nginx_available
from idp import create_app
from idp.access import sessions
from idp.accounts import service as accounts
from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.cli.db import alembic_config
from idp.clients import service as clients
from idp.consent import service as consent
from idp.extensions import db
from idp.terms import service as terms
from tests.factories import pkce_pair

PG_URL = os.environ.get("IDP_TEST_DATABASE_URL")
REDIS_URL = "redis://127.0.0.1:6379/11"
REDIRECT_URI = "https://rp.example.jp/callback"
TOKEN_LIMIT = 12


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.skipif(not nginx_available(),
                       reason="nginx is missing (apt-get install -y nginx-light; .ci/run does)"),
    pytest.mark.skipif(not PG_URL, reason="the nodes share one PostgreSQL database: set "
                                          "IDP_TEST_DATABASE_URL (CI's PostgreSQL run does)"),
    pytest.mark.skipif(not redis_available(), reason="needs Redis on 127.0.0.1:6379"),
]


@pytest.fixture(scope="module")
def cluster():
    name = f"machi_scale_{secrets.token_hex(4)}"
    parts = urlsplit(PG_URL)
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {"IDP_ENVIRONMENT": "production", "IDP_SMTP_URL": "smtp://127.0.0.1:25",
           "IDP_KEY_ENCRYPTION_KEY": "ZmFrZS1rZXktZW5jcnlwdGlvbi1rZXktZm9yLXRlc3Q=",
           "IDP_TOKEN_RATE_LIMIT": f"{TOKEN_LIMIT} per minute", "IDP_LOG_LEVEL": "WARNING"}
    try:
        command.upgrade(alembic_config("postgresql+psycopg://" + url.split("://", 1)[1]),
                        "head")
        with Cluster(url, REDIS_URL, nodes=2, env=env) as running:
            running.app = create_app({
                "environment": "production", "smtp_url": "smtp://127.0.0.1:25",
                "key_encryption_key": "ZmFrZS1rZXktZW5jcnlwdGlvbi1rZXktZm9yLXRlc3Q=",
                "issuer": running.url, "secret_key": running.secret_key, "database_url": url,
                "redis_url": REDIS_URL, "log_level": "WARNING",
                "argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1})
            yield running
            with running.app.app_context():
                db.engine.dispose()
    finally:
        redis.Redis.from_url(REDIS_URL).flushdb()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class Through:
    """HTTP to one base URL (through nginx, or a node directly) from a chosen source address."""

    def __init__(self, base: str, cert: str, source: str = "127.0.0.1"):
        self.base = base
        self.cert = cert
        self.session = requests.Session()
        adapter = _SourceAdapter(source)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def get(self, path, **kw):
        # verify= on each call: a REQUESTS_CA_BUNDLE in the environment would
        # otherwise win over a session-level setting.
        return self.session.get(self.base + path, allow_redirects=False, timeout=30,
                                verify=self.cert, **kw)

    def post(self, path, **kw):
        return self.session.post(self.base + path, allow_redirects=False, timeout=30,
                                 verify=self.cert, **kw)


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def node(cluster, i: int, source: str = "127.0.0.1") -> Through:
    return Through(cluster.node_url(i), str(cluster.cert), source)


@pytest.fixture
def world(cluster):
    """A company with an RP, a resident who consented to it and is signed in (cookie)."""
    with cluster.app.test_request_context():
        company = clients.create_company(f"A社 {secrets.token_hex(3)}")
        rp, rp_secret = clients.register_client(
            company.id, "XXXサービス", redirect_uris=[REDIRECT_URI],
            scopes=["openid", "name", "email", "offline_access"],
            grant_types=["authorization_code", "refresh_token"], purpose="テスト")
        resident = accounts.create_resident(
            f"{secrets.token_hex(4)}@example.jp", "correct horse battery",
            accounts.Profile(family_name="札幌", given_name="花子"), email_verified=True,
            terms_version=terms.current_version())
        scopes = ["openid", "name", "email", "offline_access"]
        consent.grant(resident, rp, scopes, scopes)
        sid, _ = sessions.start_session(resident)
        db.session.commit()
        cookie = cluster.app.session_interface.get_signing_serializer(cluster.app).dumps(
            {"sid": sid, "_permanent": True})
        world = {"company_id": company.id, "rp": (rp.id, rp_secret), "resident_id": resident.id,
                 "cookie": {"machi_id_session": cookie}}
    return world


def authorize(through: Through, world, scope="openid name email offline_access") -> tuple:
    verifier, challenge = pkce_pair()
    query = urlencode({"response_type": "code", "client_id": world["rp"][0],
                       "redirect_uri": REDIRECT_URI, "scope": scope, "state": "st",
                       "nonce": secrets.token_hex(8), "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    response = through.get("/authorize?" + query, cookies=world["cookie"])
    assert response.status_code == 302, response.text
    found = parse_qs(urlsplit(response.headers["Location"]).query)
    assert found["iss"] == [through_issuer(through)]
    return found["code"][0], verifier


def through_issuer(through: Through) -> str:
    return through.get("/.well-known/openid-configuration").json()["issuer"]


def token(through: Through, world, **data):
    return through.post("/token", data=data, auth=world["rp"])


def code_tokens(cluster, world) -> dict:
    code, verifier = authorize(node(cluster, 0), world)
    response = token(node(cluster, 1), world, grant_type="authorization_code", code=code,
                     redirect_uri=REDIRECT_URI, code_verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_code_issued_through_node_a_is_redeemed_through_node_b(cluster, world):
    """Test that authorize on A, token on B and userinfo on A form one flow."""
    tokens = code_tokens(cluster, world)
    assert tokens["id_token"] and tokens["refresh_token"]
    userinfo = node(cluster, 0).get("/userinfo",
                                    headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 200
    assert userinfo.json()["name"] == "札幌 花子"


def test_a_code_replayed_on_the_other_node_is_refused_and_revokes(cluster, world):
    """Test that a code redeemed on B cannot be redeemed again on A, which kills B's tokens."""
    code, verifier = authorize(node(cluster, 0), world)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}
    first = token(node(cluster, 1), world, **data)
    assert first.status_code == 200
    replay = token(node(cluster, 0), world, **data)
    assert replay.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert node(cluster, 1).get("/userinfo", headers=bearer).status_code == 401


def test_refresh_rotation_and_reuse_detection_hold_across_nodes(cluster, world):
    """Test that a refresh token rotated on A is refused on B and its family is revoked."""
    tokens = code_tokens(cluster, world)
    rotated = token(node(cluster, 0), world, grant_type="refresh_token",
                    refresh_token=tokens["refresh_token"])
    assert rotated.status_code == 200
    reuse = token(node(cluster, 1), world, grant_type="refresh_token",
                  refresh_token=tokens["refresh_token"])
    assert reuse.json()["error"] == "invalid_grant"
    # Reuse killed the family: the newest refresh token is dead on both nodes.
    for i in (0, 1):
        again = token(node(cluster, i), world, grant_type="refresh_token",
                      refresh_token=rotated.json()["refresh_token"])
        assert again.json()["error"] == "invalid_grant"
    with cluster.app.app_context():
        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.tag == str(AuditTag.REFRESH_REUSE),
            AuditEvent.client_id == world["rp"][0])) is not None


def test_a_revocation_through_a_is_refused_through_b_at_once(cluster, world):
    """Test that the very next request on B refuses a token revoked on A."""
    tokens = code_tokens(cluster, world)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert node(cluster, 1).get("/userinfo", headers=bearer).status_code == 200
    revoked = node(cluster, 0).post("/revoke", auth=world["rp"],
                                    data={"token": tokens["refresh_token"],
                                          "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    assert node(cluster, 1).get("/userinfo", headers=bearer).status_code == 401
    refresh = token(node(cluster, 1), world, grant_type="refresh_token",
                    refresh_token=tokens["refresh_token"])
    assert refresh.json()["error"] == "invalid_grant"


def test_a_revoked_client_is_refused_on_every_node_at_once(cluster, world):
    """Test that revoking a client (one node's database write) stops it on all nodes."""
    tokens = code_tokens(cluster, world)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    for i in (0, 1):  # both nodes have just served the client
        assert node(cluster, i).get("/userinfo", headers=bearer).status_code == 200
    with cluster.app.test_request_context():
        clients.revoke_client(world["rp"][0], actor="test")
        db.session.commit()
    for i in (0, 1):
        assert node(cluster, i).get("/userinfo", headers=bearer).status_code == 401
        refresh = token(node(cluster, i), world, grant_type="refresh_token",
                        refresh_token=tokens["refresh_token"])
        assert refresh.json()["error"] == "invalid_client"


def test_rate_limits_count_across_nodes(cluster):
    """Test that a client's token requests on A and B share one Redis counter."""
    with cluster.app.test_request_context():
        company = clients.create_company(f"B社 {secrets.token_hex(3)}")
        client, secret = clients.register_client(
            company.id, "バックエンド", scopes=["touch_events"],
            grant_types=["client_credentials"], purpose="テスト")
        client_id = client.id
        db.session.commit()
    statuses = [node(cluster, i % 2).post("/token", auth=(client_id, secret),
                                          data={"grant_type": "client_credentials"}).status_code
                for i in range(TOKEN_LIMIT + 2)]
    assert statuses[:TOKEN_LIMIT] == [200] * TOKEN_LIMIT
    assert statuses[TOKEN_LIMIT:] == [429, 429]


def _token_issue_ip(cluster, client_id: str) -> str:
    with cluster.app.app_context():
        return db.session.scalars(
            select(AuditEvent.ip).where(AuditEvent.tag == str(AuditTag.TOKEN_ISSUE),
                                        AuditEvent.client_id == client_id)
            .order_by(AuditEvent.id.desc())).first()


@pytest.fixture
def backend(cluster):
    with cluster.app.test_request_context():
        company = clients.create_company(f"C社 {secrets.token_hex(3)}")
        client, secret = clients.register_client(
            company.id, "バックエンド", scopes=["touch_events"],
            grant_types=["client_credentials"], purpose="テスト")
        client_id = client.id
        db.session.commit()
    return client_id, secret


SPOOF = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
         "X-Forwarded-Host": "evil.example"}


def test_behind_nginx_the_client_address_is_the_one_nginx_saw(cluster, backend):
    """Test that the audit trail names the client nginx saw (127.0.0.2), not nginx
    (127.0.0.1) and not what the client claimed in its own X-Forwarded-For."""
    through = Through(cluster.url, str(cluster.cert), source="127.0.0.2")
    response = through.post("/token", auth=backend, headers=SPOOF,
                            data={"grant_type": "client_credentials"})
    assert response.status_code == 200
    assert _token_issue_ip(cluster, backend[0]) == "127.0.0.2"


def test_behind_nginx_issuer_urls_and_cookies_are_https(cluster):
    """Test that nginx's https reaches the app: https issuer and endpoints, Secure cookies, HSTS."""
    through = Through(cluster.url, str(cluster.cert))
    document = through.get("/.well-known/openid-configuration").json()
    assert document["issuer"] == cluster.url
    assert document["token_endpoint"] == cluster.url + "/token"
    page = through.get("/login")
    cookie = page.headers["Set-Cookie"]
    assert "machi_id_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    # A protocol request through nginx is https to Authlib: no insecure_transport.
    assert through.post("/token", data={"grant_type": "client_credentials"}).status_code == 401


def test_spoofed_forwarded_headers_sent_directly_to_a_node_are_ignored(cluster, backend):
    """Test that a client reaching a node without nginx cannot claim an address or https."""
    direct = Through(cluster.direct_url(0), str(cluster.cert), source="127.0.0.3")
    response = direct.post("/token", auth=backend, headers=SPOOF,
                           data={"grant_type": "client_credentials"})
    assert response.status_code == 200  # plain http on a loopback host is allowed by Authlib
    assert _token_issue_ip(cluster, backend[0]) == "127.0.0.3"
    # On a non-loopback Host the claimed https is not believed: Authlib refuses http.
    refused = direct.post("/token", auth=backend, data={"grant_type": "client_credentials"},
                          headers={**SPOOF, "Host": "id.example.jp"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "insecure_transport"
