"""/metrics: who may scrape, the text parses, and the counters move where events happen."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from idp import metrics
from idp.extensions import db
from idp.outbox import service as outbox
from tests import factories

TOKEN = "m" * 40  # noqa: S105 - a test secret


def scrape(client, **kwargs) -> dict[str, dict[tuple, float]]:
    """The samples of /metrics by name, each keyed by its sorted labels."""
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_metrics_parse_and_name_every_documented_family(client):
    """Test that /metrics is Prometheus text with the families docs/metrics.md lists."""
    client.get("/healthz")
    samples = scrape(client)
    for name in ("machi_id_http_requests_total", "machi_id_http_request_duration_seconds_bucket",
                 "machi_id_outbox_pending", "machi_id_outbox_oldest_pending_age_seconds",
                 "machi_id_outbox_dead", "machi_id_db_pool_checked_out",
                 "machi_id_db_pool_overflow"):
        assert name in samples, name
    assert value(samples, "machi_id_http_requests_total", endpoint="observability.healthz",
                 method="GET", status="200") >= 1
    assert not any(name.endswith("_created") for name in samples)


@pytest.mark.parametrize("address", ["10.0.0.7", "192.0.2.1", "2001:db8::1"])
def test_other_addresses_get_404(client, address):
    """Test that an address outside metrics_allow without the token gets a 404."""
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 404
    assert "machi_id" not in response.get_data(as_text=True)


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": TOKEN,
                                                 "metrics_allow": ""}])
@pytest.mark.parametrize(("header", "status"), [
    (f"Bearer {TOKEN}", 200),
    (f"bearer {TOKEN}", 200),
    (f"Bearer {TOKEN[:-1]}x", 404),
    (f"Bearer {TOKEN}{TOKEN}", 404),
    (f"Basic {TOKEN}", 404),
    ("Bearer", 404),
    (None, 404),
])
def test_bearer_secret_opens_metrics_from_anywhere(client, header, status):
    """Test that only the exact metrics_token opens /metrics (metrics_allow empty)."""
    headers = {"Authorization": header} if header else {}
    response = client.get("/metrics", headers=headers,
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == status


@pytest.mark.parametrize("settings_overrides", [{"metrics_allow": "10.0.0.0/8"}])
def test_allowed_network(client):
    """Test that metrics_allow lets its network in and leaves loopback out when not listed."""
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.2.3.4"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 404


def test_metrics_sets_no_cookie_and_writes_nothing(client):
    """Test that a scrape has no side effect: no cookie, no audit event."""
    from idp.audit.models import AuditEvent
    from tests.helpers.app import count
    before = count(AuditEvent)
    response = client.get("/metrics")
    assert "Set-Cookie" not in response.headers
    assert count(AuditEvent) == before


def test_endpoint_label_is_the_route_not_the_path(client):
    """Test that unknown paths share one label and routes with variables use their name."""
    before = scrape(client)
    client.get("/no-such-page/hanako@example.jp")
    client.get("/consent/some-interaction-id")
    after = scrape(client)
    labels = {dict(k).get("endpoint") for k in after["machi_id_http_requests_total"]}
    assert not any("hanako" in (label or "") or "some-interaction" in (label or "")
                   for label in labels)
    assert value(after, "machi_id_http_requests_total", endpoint="none", method="GET",
                 status="404") == value(before, "machi_id_http_requests_total", endpoint="none",
                                        method="GET", status="404") + 1


def test_tokens_sign_ins_and_consents_count_at_commit(client):
    """Test that a code flow moves the token, sign-in and consent counters."""
    factories.resident()
    rp = factories.rp()
    before = scrape(client)
    factories.Browser(client).login(password="wrong password!")
    factories.tokens(client, rp)
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("machi_id_tokens_issued_total", grant_type="authorization_code",
                 company="other") == 1
    assert moved("machi_id_sign_ins_total", realm="resident", result="succeeded") == 1
    assert moved("machi_id_sign_ins_total", realm="resident", result="failed") == 1
    assert moved("machi_id_consents_total", action="granted") == 1
    assert moved("machi_id_audit_events_total", tag="oauth:token:issue") == 1
    assert moved("machi_id_http_requests_total", endpoint="oauth.token", method="POST",
                 status="200") == 1


def test_rolled_back_events_are_not_counted(app):
    """Test that an audit event of a transaction that rolls back never counts."""
    from idp.audit.service import record
    from idp.audit.tags import AuditTag
    sample = metrics.SIGN_INS.labels(realm="admin", result="failed")
    before = sample._value.get()
    record(AuditTag.ADMIN_LOGIN_FAILURE, reason="unknown_admin")
    db.session.rollback()
    assert sample._value.get() == before
    record(AuditTag.ADMIN_LOGIN_FAILURE, reason="unknown_admin")
    db.session.commit()
    assert sample._value.get() == before + 1


def test_outbox_queued_counts_at_commit(app):
    """Test that a queued message counts once its transaction commits."""
    sample = metrics.OUTBOX_MESSAGES.labels(kind="mail", result="queued")
    before = sample._value.get()
    outbox.enqueue("mail", "someone@example.jp", {"n": 1})
    assert sample._value.get() == before
    db.session.commit()
    assert sample._value.get() == before + 1


@pytest.mark.parametrize(("tag", "data", "company", "expected"), [
    ("oauth:token:issue", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}, "c1",
     (metrics.TOKENS_ISSUED, {"grant_type": "device_code", "company": "c1"})),
    ("oauth:token:refresh", {"grant_type": "something-new"}, "c2",
     (metrics.TOKENS_ISSUED, {"grant_type": "other", "company": "other"})),
    ("consent:change", {"withdrawn": True}, None, (metrics.CONSENTS, {"action": "withdrawn"})),
    ("consent:change", {"scopes": ["openid"]}, None, (metrics.CONSENTS, {"action": "changed"})),
    ("security_event:delivery", {"result": "failed", "dead": True}, None,
     (metrics.OUTBOX_MESSAGES, {"kind": "security_event", "result": "dead"})),
    ("mail:delivery", {"result": "failed", "retry_at": "x"}, None,
     (metrics.OUTBOX_MESSAGES, {"kind": "mail", "result": "failed"})),
    ("oauth:backchannel_logout:delivery", {"result": "delivered"}, None,
     (metrics.OUTBOX_MESSAGES, {"kind": "backchannel_logout", "result": "delivered"})),
    ("exchange:record:contribute", {"category": "language"}, "c1",
     (metrics.EXCHANGE_RECORDS, {"category": "language", "action": "contributed",
                                 "company": "c1"})),
    ("exchange:record:contribute", {"category": "花子@example.jp" * 5}, None,
     (metrics.EXCHANGE_RECORDS, {"category": "other", "action": "contributed",
                                 "company": "other"})),
    ("admin:login:failure", {}, None, (metrics.SIGN_INS, {"realm": "admin", "result": "failed"})),
    ("resident:login:otp_failure", {}, None,
     (metrics.SIGN_INS, {"realm": "resident", "result": "second_factor_failed"})),
])
def test_audit_tags_map_to_bounded_labels(tag, data, company, expected):
    """Test that each audit tag moves its metric with bounded labels (company allow-listed)."""
    found = metrics.increments(tag, data, company, frozenset({"c1"}))
    assert found[0] == (metrics.AUDIT_EVENTS, {"tag": tag})
    assert expected in found


def test_expired_records_count_by_record(app):
    """Test that one purge event counts each expired record, and the audit event once."""
    from idp.audit.service import record
    from idp.audit.tags import AuditTag
    expired = metrics.EXCHANGE_RECORDS.labels(category="language", action="expired",
                                              company="other")
    events = metrics.AUDIT_EVENTS.labels(tag="exchange:record:expire")
    before = expired._value.get(), events._value.get()
    record(AuditTag.RECORD_EXPIRE, actor="worker", category="language", count=7)
    db.session.commit()
    assert (expired._value.get(), events._value.get()) == (before[0] + 7, before[1] + 1)


def test_a_release_counts_each_category():
    """Test that one release counts once per released category."""
    found = metrics.increments("exchange:record:release",
                               {"categories": ["language", "household"]}, "c1")
    assert [labels["category"] for metric, labels in found
            if metric is metrics.EXCHANGE_RECORDS] == ["language", "household"]


def test_audit_sealing_lag_is_the_age_of_the_oldest_unsealed_event(client):
    """Test that machi_id_audit_sealing_lag_seconds is 0 with nothing to seal, then the age of
    the oldest committed, unsealed event (and the unsealed count beside it)."""
    from freezegun import freeze_time

    from idp.audit.service import record
    from idp.audit.tags import AuditTag
    samples = scrape(client)
    assert value(samples, "machi_id_audit_sealing_lag_seconds") == 0
    assert value(samples, "machi_id_audit_unsealed_events") == 0
    with freeze_time("2026-12-03 09:00:00+00:00") as clock:
        record(AuditTag.COMPANY_CREATE, actor="test", name="A社")
        db.session.commit()
        clock.tick(30)
        record(AuditTag.COMPANY_CREATE, actor="test", name="B社")
        db.session.commit()
        clock.tick(60)
        samples = scrape(client)
    assert value(samples, "machi_id_audit_sealing_lag_seconds") == 90
    assert value(samples, "machi_id_audit_unsealed_events") == 2


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "3 per minute"}])
def test_a_429_moves_the_refusal_counter_of_its_endpoint(client):
    """Test that each 429 of the token endpoint's limit counts once under oauth.token, and the
    answers the limit let through count nothing there."""
    rp = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])
    refusals = {"name": "machi_id_rate_limit_refusals_total", "endpoint": "oauth.token"}
    issued = {"name": "machi_id_tokens_issued_total", "grant_type": "client_credentials",
              "company": "other"}

    def post():
        return client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(rp.client_id, rp.client_secret)).status_code

    before = scrape(client)
    assert [post() for _ in range(3)] == [200, 200, 200]
    let_through = scrape(client)
    assert value(let_through, **refusals) == value(before, **refusals)
    assert [post() for _ in range(2)] == [429, 429]
    after = scrape(client)
    assert value(after, **refusals) - value(before, **refusals) == 2
    assert value(after, **issued) - value(before, **issued) == 3
    answered_429 = {"name": "machi_id_http_requests_total", "endpoint": "oauth.token",
                    "method": "POST", "status": "429"}
    assert value(after, **answered_429) - value(before, **answered_429) == 2
    other = {"name": "machi_id_rate_limit_refusals_total", "endpoint": "oauth.introspect"}
    assert value(after, **other) == value(before, **other)


def test_outbox_and_signing_key_gauges_have_their_values(client):
    """Test that the outbox gauges count waiting and dead messages per kind, that the age is the
    oldest *waiting* message's (a dead letter's age is not), and that the key age is the newest
    key's in each state, beside the number of keys in it."""
    from freezegun import freeze_time

    from idp.keys import service as keys
    from idp.outbox.models import DEAD
    from idp.outbox.models import OutboxMessage
    with freeze_time("2026-12-03 09:00:00+00:00") as clock:
        keys.ensure_keys()
        given_up = outbox.enqueue("mail", "gave-up@example.jp", {"n": 0})
        db.session.commit()
        clock.tick(20)
        outbox.enqueue("mail", "a@example.jp", {"n": 1})
        db.session.commit()
        clock.tick(30)
        outbox.enqueue("mail", "b@example.jp", {"n": 2})
        db.session.get(OutboxMessage, given_up.id).status = DEAD
        db.session.commit()
        clock.tick(70)
        samples = scrape(client)
        for immediately, seconds in ((True, 10), (True, 5), (False, 5)):
            keys.rotate(immediately=immediately)
            db.session.commit()
            clock.tick(seconds)
        rotated = scrape(client)

    assert value(samples, "machi_id_outbox_pending", kind="mail") == 2
    assert value(samples, "machi_id_outbox_dead", kind="mail") == 1
    assert value(samples, "machi_id_outbox_oldest_pending_age_seconds", kind="mail") == 100
    for kind in ("backchannel_logout", "security_event"):
        assert (("kind", kind),) in samples["machi_id_outbox_pending"]
        assert value(samples, "machi_id_outbox_pending", kind=kind) == 0
        assert value(samples, "machi_id_outbox_oldest_pending_age_seconds", kind=kind) == 0
    algs = {dict(labels)["alg"] for labels in samples["machi_id_signing_key_age_seconds"]}
    assert "RS256" in algs
    for alg in algs:
        assert value(samples, "machi_id_signing_key_age_seconds", alg=alg, state="active") == 120
        assert value(samples, "machi_id_signing_keys", alg=alg, state="active") == 1
        # 140 s in: the first key (0 s) and the second (120 s) retired, the third (130 s)
        # signs, the fourth (135 s) is published and signs a day later.
        for state, age, count in (("active", 10, 1), ("retired", 20, 2), ("published", 5, 1)):
            assert value(rotated, "machi_id_signing_key_age_seconds", alg=alg,
                         state=state) == age, state
            assert value(rotated, "machi_id_signing_keys", alg=alg, state=state) == count, state
