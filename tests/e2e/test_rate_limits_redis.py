"""Rate limits are shared through Redis: every worker and node counts together."""

from __future__ import annotations

import os

import pytest
import redis

from idp import create_app
from tests.factories import csrf
from tests.helpers.app import TEST_SETTINGS

# CI runs the SQLite and PostgreSQL suites side by side: one Redis database each.
REDIS_URL = "redis://127.0.0.1:6379/" + ("14" if os.environ.get("IDP_TEST_DATABASE_URL") else "15")


def redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_available(), reason="needs Redis on 127.0.0.1:6379")


@pytest.fixture
def nodes(migrated):
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings = {**TEST_SETTINGS, "database_url": migrated, "redis_url": REDIS_URL,
                "user_code_attempts": "6 per 10 minutes"}
    yield create_app(settings), create_app(settings)
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_wrong_user_codes_are_counted_across_nodes(nodes):
    """Test that attempts on node A and node B share one Redis counter."""
    statuses = []
    for i in range(8):
        node = nodes[i % 2].test_client()
        page = node.get("/device")
        statuses.append(node.post("/device", data={"user_code": "BCDF-GHJK",
                                                   "csrf_token": csrf(page.text)}).status_code)
    assert statuses[:6] == [400] * 6
    assert statuses[6:] == [429, 429]


def test_memory_storage_when_no_redis_url(migrated):
    """Test that without IDP_REDIS_URL the limiter counts in memory (one process)."""
    app = create_app({**TEST_SETTINGS, "database_url": migrated})
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
