"""The token endpoint is rate-limited per client (a guessed secret still counts)."""

from __future__ import annotations

import time

import limits
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.extensions import limiter
from idp.oauth import ratelimit
from tests import factories


@pytest.fixture
def settings_overrides():
    return {"token_rate_limit": "3 per minute"}


@pytest.fixture
def machines(app):
    one = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])
    two = factories.rp(one.company_id, grant_types=["client_credentials"],
                       scopes=["touch_events"])
    return one, two


def cc(client, rp, secret=None):
    return client.post("/token", data={"grant_type": "client_credentials"},
                       auth=(rp.client_id, secret or rp.client_secret))


def test_requests_over_the_limit_get_429_with_retry_after(client, machines):
    """Test that the fourth request of a client within a minute is refused with 429."""
    one, _ = machines
    assert [cc(client, one).status_code for _ in range(3)] == [200, 200, 200]
    refused = cc(client, one)
    assert refused.status_code == 429
    assert refused.is_json and refused.json["error"] == "too_many_requests"
    assert 0 < int(refused.headers["Retry-After"]) <= 60  # the window is a minute


def test_answers_within_the_limit_carry_no_rate_limit_headers(client, machines):
    """Test that a 200 carries neither X-RateLimit-* nor Retry-After (reading the window for
    them would cost a second storage round trip on every request)."""
    one, _ = machines
    response = cc(client, one)
    assert response.status_code == 200
    assert not [h for h, _ in response.headers if h.lower().startswith(("x-ratelimit",
                                                                        "retry-after"))]


def test_wrong_secrets_count_too(client, machines):
    """Test that guessing a client's secret uses up that client's allowance."""
    one, _ = machines
    assert [cc(client, one, "guess").status_code for _ in range(3)] == [401, 401, 401]
    assert cc(client, one).status_code == 429


def test_the_limit_is_per_client(client, machines):
    """Test that one client's burst does not stop another client."""
    one, two = machines
    for _ in range(4):
        cc(client, one)
    assert cc(client, two).status_code == 200


def test_client_id_in_the_form_counts_as_the_client(client, machines):
    """Test that client_secret_post style requests are counted per client as well."""
    one, _ = machines
    for _ in range(3):
        client.post("/token", data={"grant_type": "client_credentials",
                                    "client_id": one.client_id, "client_secret": "x"})
    assert cc(client, one).status_code == 429


def test_a_percent_encoded_client_id_counts_as_the_same_client(client, machines):
    """Test that ``mc%5F…`` and ``mc_…`` in Basic credentials share one bucket: the id is
    form-urlencoded there (RFC 6749 §2.3.1), and the limit keys on the id client
    authentication decodes, not on the raw username."""
    one, _ = machines
    encoded = one.client_id.replace("_", "%5F")
    assert encoded != one.client_id
    answers = [client.post("/token", data={"grant_type": "client_credentials"},
                           auth=(encoded, one.client_secret)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert cc(client, one).status_code == 429
    assert client.post("/token", data={"grant_type": "client_credentials"},
                       auth=(one.client_id.replace("_", "%5f"), "guess")).status_code == 429


def test_a_client_assertion_counts_against_the_client_it_names(client, machines):
    """Test that private_key_jwt requests without a client_id field count against the client
    the assertion names (its ``sub``, which authentication looks up), not the address."""
    key = RSAKey.generate_key(2048, private=True)
    rp = factories.rp(token_endpoint_auth_method="private_key_jwt",
                      grant_types=["client_credentials"], scopes=["touch_events"],
                      jwks={"keys": [key.as_dict(private=False, kid="k1", alg="RS256")]})
    forged = RSAKey.generate_key(2048, private=True)

    def assertion_request():
        now = int(time.time())
        claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": "http://localhost/token",
                  "iat": now, "exp": now + 60, "jti": factories.token(8)}
        return client.post("/token", data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt.encode({"alg": "RS256", "kid": "k1"}, claims, forged)})

    for _ in range(3):
        answer = assertion_request()
        assert (answer.status_code, answer.json["error"]) == (400, "invalid_client")
    assert client.post("/token", data={"grant_type": "client_credentials", "client_id":
                                       rp.client_id, "client_secret": "x"}).status_code == 429
    assert assertion_request().status_code == 429
    one, _ = machines
    assert cc(client, one).status_code == 200


# ---- large limits are settled with the storage in batches ------------------------

def storage_count(app, rp) -> int:
    """What the shared storage holds for the client's window (every worker's settled count)."""
    (item,) = limits.parse_many("100 per minute")
    identifiers = (app.config["RATELIMIT_KEY_PREFIX"], ratelimit.LIMITED_VIEW,
                   "client:" + rp.client_id)
    return limiter.limiter.storage.get(item.key_for(*identifiers))


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "100 per minute"}])
def test_a_large_limit_is_settled_in_batches_and_overshoots_by_less_than_one(app, client,
                                                                           machines):
    """Test that with 100 per minute (batches of 2) the storage sees one round trip per two
    requests, the worker allows at most one request beyond the limit (a batch less one),
    and once refused it refuses until the window resets without asking the storage."""
    (item,) = limits.parse_many("100 per minute")
    assert ratelimit.batch_size(item) == 2
    one, two = machines
    answers = [cc(client, one).status_code for _ in range(5)]
    assert answers == [200] * 5 and storage_count(app, one) == 4  # the fifth waits
    answers = [cc(client, one).status_code for _ in range(97)]
    assert answers == [200] * 96 + [429]  # 101 allowed: 100 and one not yet settled
    assert storage_count(app, one) == 102
    assert cc(client, one).status_code == 429
    assert storage_count(app, one) == 102  # remembered: no round trip
    assert cc(client, two).status_code == 200  # the limit is still per client


@pytest.mark.parametrize("settings_overrides", [{"token_rate_limit": "49 per minute"}])
def test_a_small_limit_stays_exact(app, client, machines):
    """Test that below 50 per window every request is a hit in the storage."""
    (item,) = limits.parse_many("49 per minute")
    assert ratelimit.batch_size(item) == 1
    one, _ = machines
    assert [cc(client, one).status_code for _ in range(50)] == [200] * 49 + [429]
