"""Redis down or frozen: limits fall back to memory, nothing answers 500 or stalls.

Each test starts its own redis-server on a free port (never the shared one on
:6379), then kills it or freezes it with SIGSTOP (SIGCONT in teardown). The
rate limiter's storage (idp.limiter_storage) must answer every request in its
normal shape, open its circuit breaker after a bounded number of Redis
attempts, log each change of state once, and never touch Redis for discovery
or JWKS. No timed assertions: outcomes and counts only.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading

import pybreaker
import pytest
import redis
from freezegun import freeze_time

from idp.extensions import limiter
from idp.limiter_storage import FAIL_MAX
from tests import factories
from tests.factories import csrf

REDIS_SERVER = shutil.which("redis-server")
COOLDOWN = 30

pytestmark = pytest.mark.skipif(not REDIS_SERVER,
                                reason="needs redis-server (apt-get install redis-server)")


class RedisServer:
    """A redis-server of this test's own, on a free loopback port."""

    def __init__(self, directory):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.frozen = False
        ready = threading.Event()

        def drain():  # read the log to its end, so the server never blocks on a full pipe
            for line in self.process.stdout:
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(10) or self.process.poll() is not None:
            self.stop()
            pytest.fail("redis-server did not start")

    def keys(self) -> list[bytes]:
        return redis.Redis.from_url(self.url, socket_timeout=2).keys("*")

    def freeze(self):
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        os.kill(self.process.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self):
        if self.frozen:
            self.thaw()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(redis_server):
    return {"redis_url": redis_server.url, "redis_timeout_ms": 100, "redis_cooldown": COOLDOWN,
            "token_rate_limit": "5 per minute"}


@pytest.fixture
def machine(app):
    return factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])


class Attempts(pybreaker.CircuitBreakerListener):
    """Counts the calls that actually go to Redis (the breaker lets them through)."""

    def __init__(self):
        self.count = 0

    def before_call(self, cb, func, *args, **kwargs):
        self.count += 1


@pytest.fixture
def attempts(app):
    counter = Attempts()
    limiter.storage.breaker.add_listener(counter)
    return counter


def token(client, machine):
    return client.post("/token", data={"grant_type": "client_credentials"},
                       auth=(machine.client_id, machine.client_secret))


def login(client):
    page = client.get("/login")
    return client.post("/login", data={"email": "hanako@example.jp", "password": "wrong",
                                       "csrf_token": csrf(page.text)})


def device(client):
    page = client.get("/device")
    return client.post("/device", data={"user_code": "BCDF-GHJK",
                                        "csrf_token": csrf(page.text)})


def normal_round(client, machine) -> list[int]:
    """One request to each limited endpoint: their answers when nothing is over a limit."""
    return [token(client, machine).status_code, login(client).status_code,
            device(client).status_code]


NORMAL = [200, 401, 400]


def test_limits_are_counted_in_redis_while_it_answers(client, machine, redis_server, attempts):
    """Test that with Redis up the counters live in Redis and the breaker stays closed."""
    assert normal_round(client, machine) == NORMAL
    assert redis_server.keys()
    assert attempts.count > 0
    assert limiter.storage.breaker.current_state == pybreaker.STATE_CLOSED


def test_redis_down_answers_normally_and_logs_once(client, machine, redis_server, caplog):
    """Test that with Redis killed /token, /login and /device give their normal answers
    (never 500), limits still hold in this process's memory, and the switch is logged once,
    without a traceback."""
    factories.resident()
    assert normal_round(client, machine) == NORMAL
    redis_server.stop()
    caplog.set_level(logging.INFO)
    rounds = [normal_round(client, machine) for _ in range(3)]
    assert rounds == [NORMAL] * 3
    assert [token(client, machine).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/.well-known/openid-configuration").status_code == 200
    assert client.get("/jwks.json").status_code == 200
    warnings = [r for r in caplog.records if r.name == "idp.limiter_storage"]
    assert [(r.levelname, r.getMessage().split(" (")[0]) for r in warnings] == [
        ("WARNING", "Redis unreachable")]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert limiter.storage.breaker.current_state == pybreaker.STATE_OPEN


def test_frozen_redis_opens_the_breaker_and_discovery_never_touches_it(
        client, machine, redis_server, attempts, caplog):
    """Test that with Redis frozen (SIGSTOP) discovery and JWKS answer without one Redis
    call, the limited endpoints answer normally, Redis is tried at most FAIL_MAX times before
    the breaker opens, once per cool-down after that, and again for good once it answers."""
    factories.resident()
    assert normal_round(client, machine) == NORMAL
    redis_server.freeze()
    caplog.set_level(logging.INFO)
    before = attempts.count

    for path in ("/.well-known/openid-configuration", "/jwks.json",
                 "/.well-known/oauth-authorization-server"):
        assert client.get(path).status_code == 200
    assert attempts.count == before
    assert limiter.storage.breaker.current_state == pybreaker.STATE_CLOSED

    rounds = [normal_round(client, machine) for _ in range(3)]
    assert rounds == [NORMAL] * 3
    assert attempts.count - before == FAIL_MAX
    assert limiter.storage.breaker.current_state == pybreaker.STATE_OPEN

    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=COOLDOWN + 1)
    with freeze_time(later):
        assert token(client, machine).status_code == 200  # one probe, still frozen
    assert attempts.count - before == FAIL_MAX + 1
    assert limiter.storage.breaker.current_state == pybreaker.STATE_OPEN

    redis_server.thaw()
    with freeze_time(later + dt.timedelta(seconds=COOLDOWN + 1)):
        assert token(client, machine).status_code == 200
    assert limiter.storage.breaker.current_state == pybreaker.STATE_CLOSED
    assert [(r.levelname, r.getMessage().split(" (")[0].split(":")[0])
            for r in caplog.records if r.name == "idp.limiter_storage"] == [
        ("WARNING", "Redis unreachable"), ("INFO", "Redis still unreachable"),
        ("INFO", "Redis reachable again")]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
