"""Two nodes, one database: a cut-off made on one node is refused by the other's very
next request, although that node answers from clients it keeps in process.

Node A is the test's app (real commits); node B is a second app on the same database
with a cache of its own (``idp.clients.cache``), warmed by a request before each
cut-off. Each kind of cut-off bumps the revocation epoch in its transaction
(``idp.access.epoch``); B's next request reads the new value along its statements and
answers from the database, never from the copy it held. Reinstatement and secret
rotation show the other direction: a stale cache never refuses what is now allowed.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy import select

from idp import create_app
from idp import metrics
from idp.access import epoch
from idp.access.models import Token
from idp.clients import cache
from idp.clients import service as clients
from idp.clients.validation import ClientSettings
from idp.extensions import db
from idp.keys import service as keys
from tests import factories
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.app import IsolatedClient
from tests.helpers.oauth import introspect

pytestmark = pytest.mark.commits

CC = {"grant_type": "client_credentials", "scope": "touch_events"}


@pytest.fixture
def node_b(app):
    """A second node on the same database, with its own client cache and no listener: what
    these tests show holds without LISTEN/NOTIFY (SQLite has none anyway)."""
    other = create_app({**TEST_SETTINGS, "database_url": app.config["SQLALCHEMY_DATABASE_URI"]
                        .replace("postgresql+psycopg://", "postgresql://"),
                        "outbox_dir": app.extensions["idp.settings"].outbox_dir})
    other.test_client_class = IsolatedClient
    cache.cache_of(other).listen = False
    yield other
    cache.stop_listener(other)
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def backend(app):
    company_id = factories.company()
    return factories.rp(company_id, grant_types=["client_credentials"], scopes=["touch_events"],
                        redirect_uris=None)


def token_on(node, rp) -> object:
    return node.test_client().post("/token", data=CC, auth=(rp.client_id, rp.client_secret))


def cached_ids(node) -> set[str]:
    return set(cache.cache_of(node).clients)


def warm(node, rp) -> None:
    """B authenticates the client once: it is in B's cache now."""
    assert token_on(node, rp).status_code == 200
    assert rp.client_id in cached_ids(node)


def tokens_of(rp) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Token)
                             .where(Token.client_id == rp.client_id))


def test_revoking_a_client_on_a_is_refused_on_b_at_once(node_b, backend):
    """Test that a client revoked on node A is refused by node B's very next request."""
    warm(node_b, backend)
    issued = tokens_of(backend)
    clients.revoke_client(backend.client_id)
    db.session.commit()
    response = token_on(node_b, backend)
    assert response.status_code == 401 and response.json["error"] == "invalid_client"
    # The first answer made from the stale copy was rolled back, not only withheld.
    assert tokens_of(backend) == issued


def test_suspending_a_company_on_a_is_refused_on_b_at_once(node_b, backend):
    """Test that a company suspended on node A cuts its clients off on node B at once."""
    warm(node_b, backend)
    clients.suspend_company(backend.company_id)
    db.session.commit()
    assert token_on(node_b, backend).json["error"] == "invalid_client"


def test_revoking_a_company_on_a_is_refused_on_b_at_once(node_b, backend):
    """Test that a company revoked for good on node A is refused on node B at once."""
    warm(node_b, backend)
    clients.revoke_company(backend.company_id)
    db.session.commit()
    assert token_on(node_b, backend).json["error"] == "invalid_client"


def test_reinstating_a_company_on_a_is_honoured_on_b_at_once(node_b, backend):
    """Test that B, which cached the suspended client, accepts it right after reinstatement."""
    clients.suspend_company(backend.company_id)
    db.session.commit()
    assert token_on(node_b, backend).json["error"] == "invalid_client"
    clients.reinstate_company(backend.company_id)
    db.session.commit()
    assert token_on(node_b, backend).status_code == 200


def test_rotating_a_secret_on_a_takes_effect_on_b_at_once(node_b, backend):
    """Test that after a rotation on A the old secret fails on B and the new one works."""
    warm(node_b, backend)
    _client, secret = clients.rotate_secret(backend.client_id)
    db.session.commit()
    assert token_on(node_b, backend).json["error"] == "invalid_client"
    rotated = factories.RP(backend.client_id, secret, backend.company_id)
    assert token_on(node_b, rotated).status_code == 200


def test_narrowing_a_client_on_a_takes_effect_on_b_at_once(node_b, backend):
    """Test that a grant type removed on A is refused on B's next request."""
    warm(node_b, backend)
    client = clients.get_client(backend.client_id)
    settings = clients.settings_of(client)
    clients.update_client(backend.client_id, ClientSettings(
        **{**vars(settings), "grant_types": ["authorization_code"],
           "redirect_uris": ["https://rp.example.jp/cb"]}))
    db.session.commit()
    assert token_on(node_b, backend).json["error"] == "unauthorized_client"


def test_introspection_by_a_revoked_caller_is_refused_on_b_for_an_unknown_token(
        node_b, backend):
    """Test that B refuses a caller revoked on A even when no statement of the request
    reads the epoch along (the token is unknown): the view reads it before answering."""
    peer = factories.rp(backend.company_id)
    assert introspect(node_b.test_client(), peer, "no-such-token").json == {"active": False}
    clients.revoke_client(peer.client_id)
    db.session.commit()
    response = introspect(node_b.test_client(), peer, "no-such-token")
    assert response.status_code == 401 and response.json["error"] == "invalid_client"


@pytest.mark.parametrize("cut_off", ["client", "company"])
def test_an_introspection_answered_beneath_flask_on_b_after_a_cut_off_is_refused(
        app, node_b, backend, cut_off):
    """Test that B, which answers introspections of a cached caller beneath Flask
    (``idp.oauth.direct``), refuses the caller at once after a cut-off on A: the epoch
    read along the token's lookup is not the cached one, so Flask answers."""
    peer = factories.rp(backend.company_id)
    access_token = token_on(app, backend).json["access_token"]
    answered = metrics.DIRECT_ANSWERS.labels(endpoint="oauth.introspect")
    for _ in range(2):  # the first caches the caller, the second is answered directly
        before = answered._value.get()
        assert introspect(node_b.test_client(), peer, access_token).json["active"] is True
    assert answered._value.get() == before + 1
    if cut_off == "client":
        clients.revoke_client(peer.client_id)
    else:
        clients.suspend_company(peer.company_id)
    db.session.commit()
    response = introspect(node_b.test_client(), peer, access_token)
    assert response.status_code == 401 and response.json["error"] == "invalid_client"
    assert answered._value.get() == before + 1


@pytest.mark.parametrize("cut_off", ["client", "company", "secret", "key"])
def test_each_cut_off_moves_the_epoch(backend, cut_off):
    """Test that every kind of cut-off gives the epoch a new value in its transaction."""
    db.session.rollback()
    before = epoch.current()
    if cut_off == "client":
        clients.revoke_client(backend.client_id)
    elif cut_off == "company":
        clients.suspend_company(backend.company_id)
    elif cut_off == "secret":
        clients.rotate_secret(backend.client_id)
    else:
        keys.retire(keys.signing_key("RS256").kid)
    db.session.commit()
    assert epoch.current() not in (None, before)


def test_a_cut_off_rolled_back_leaves_b_s_cache_valid(node_b, backend):
    """Test that a cut-off that never commits changes nothing B sees."""
    warm(node_b, backend)
    clients.revoke_client(backend.client_id)
    db.session.rollback()
    assert token_on(node_b, backend).status_code == 200


def test_the_listener_empties_b_s_cache_when_a_cut_off_commits(node_b, backend, is_postgres):
    """Test that on PostgreSQL node B's listener empties its cache at the commit of a
    cut-off on node A, before B gets another request (NOTIFY is sent at commit)."""
    if not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    b_cache = cache.cache_of(node_b)
    b_cache.listen = True
    # B's first request starts the listener; the listener empties the cache once it
    # listens (bumps made while nobody listened), so the client is cached only after that.
    assert token_on(node_b, backend).status_code == 200
    listener = b_cache.listener
    assert listener is not None and listener.listening.wait(30)
    warm(node_b, backend)
    listener.heard.clear()
    # (No check of B's cache here: a notification of the fixtures' own earlier commits may
    # still arrive and empty it; what matters is what this commit makes B do.)
    clients.revoke_client(backend.client_id)
    db.session.commit()
    assert listener.heard.wait(30)
    assert cached_ids(node_b) == set()
    assert token_on(node_b, backend).json["error"] == "invalid_client"


def test_stopping_the_listener_does_not_wait_out_its_poll(node_b, backend, is_postgres,
                                                          monkeypatch):
    """Test that stop() wakes a listener waiting for notifications: with an hour's poll,
    it still returns at once (every test app that commits is stopped at its end)."""
    if not is_postgres:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    monkeypatch.setattr(cache.Listener, "POLL_SECONDS", 3600.0)
    b_cache = cache.cache_of(node_b)
    b_cache.listen = True
    # A request starts the listener. (Not warm(): the listener empties the cache when it
    # starts listening, which may come after the request has cached the client.)
    assert token_on(node_b, backend).status_code == 200
    listener = b_cache.listener
    assert listener is not None and listener.listening.wait(30)
    stopping = threading.Thread(target=listener.stop)
    stopping.start()
    stopping.join(30)
    assert not stopping.is_alive() and not listener.alive()


def test_without_postgresql_no_listener_runs(node_b, backend, is_postgres):
    """Test that on SQLite no listener is started and the epoch alone keeps B exact."""
    if is_postgres:
        pytest.skip("SQLite only")
    b_cache = cache.cache_of(node_b)
    b_cache.listen = True
    warm(node_b, backend)
    assert b_cache.listener is None
    clients.suspend_company(backend.company_id)
    db.session.commit()
    assert token_on(node_b, backend).json["error"] == "invalid_client"


@pytest.mark.parametrize("revoked", ["another client", "the kiosk"])
def test_a_pending_poll_on_b_after_a_cut_off_is_answered_from_the_database(node_b, revoked):
    """Test that a poll answered on node B after a cut-off committed on A (B's cached
    kiosk is stale) is answered from the database, and writes the poll at most once: a
    pending poll's one statement writes only under the epoch B's cache was read with,
    and on PostgreSQL it commits by itself, so a first answer made from the stale copy
    could not be rolled back. The kiosk itself revoked is invalid_client, its code's
    poll time untouched; another client's cut-off leaves the kiosk's answer pending, the
    poll written once (twice, the second write would have seen the first and answered
    slow_down to a kiosk that kept its interval)."""
    from idp.access.models import DeviceCode
    from idp.kiosk import service as kiosks
    from tests.helpers.device import authorize
    from tests.helpers.device import poll

    company = factories.company("C社")
    client, secret, _ = kiosks.create_kiosk(company, "北2条広場サイネージ", "北2条西4丁目")
    kiosk = factories.RP(client.id, secret, company, redirect_uri="")
    db.session.commit()
    on_b = node_b.test_client()
    with freeze_time(dt.datetime.now(dt.UTC)) as frozen:
        code = authorize(on_b, kiosk)["device_code"]
        assert poll(on_b, kiosk, code).json["error"] == "authorization_pending"  # B caches it
        first_poll = frozen()
        assert kiosk.client_id in cached_ids(node_b)
        if revoked == "the kiosk":
            clients.revoke_client(kiosk.client_id)
        else:
            other = factories.rp(factories.company(), grant_types=["client_credentials"],
                                 scopes=["touch_events"], redirect_uris=None)
            clients.revoke_client(other.client_id)
        db.session.commit()
        frozen.tick(dt.timedelta(seconds=6))  # past the 5-second interval
        response = poll(on_b, kiosk, code)
    db.session.rollback()
    row = db.session.scalar(select(DeviceCode).where(DeviceCode.client_id == kiosk.client_id))
    assert row.interval == 5
    if revoked == "the kiosk":
        assert response.status_code == 401 and response.json["error"] == "invalid_client"
        assert row.last_polled_at == first_poll.replace(tzinfo=dt.UTC)
    else:
        assert response.status_code == 400, response.text
        assert response.json["error"] == "authorization_pending"
        assert row.last_polled_at > first_poll.replace(tzinfo=dt.UTC)


def b_signs_with(node) -> str:
    with node.app_context():
        kid = keys.signing_key("RS256").kid
        db.session.rollback()
    return kid


def test_a_key_rotated_or_retired_on_a_is_the_one_b_signs_with_at_once(node_b):
    """Test that node B, which keeps the signing schedule in process, signs with the key
    a rotation on node A made active at once, and never with a key A retired."""
    keys.ensure_keys()
    db.session.commit()
    first = b_signs_with(node_b)
    assert b_signs_with(node_b) == first  # kept: B read the schedule once
    rotated = {k.alg: k.kid for k in keys.rotate(immediately=True)}
    db.session.commit()
    assert b_signs_with(node_b) == rotated["RS256"] != first
    keys.rotate(immediately=False)  # pending: B goes on signing with the active key
    db.session.commit()
    assert b_signs_with(node_b) == rotated["RS256"]
    keys.retire(rotated["RS256"])
    db.session.commit()
    assert b_signs_with(node_b) not in (rotated["RS256"], first)
