"""`idp serve` with two worker processes: /metrics sums them (prometheus-client multiprocess
mode), /readyz is ready on a migrated database, and every line on stderr is JSON."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import requests
from alembic import command
from prometheus_client.parser import text_string_to_metric_families

from idp import create_app
from idp.cli.db import alembic_config
from idp.extensions import db
from idp.keys import service as keys
from tests.helpers.app import TEST_SETTINGS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_are_summed_and_logs_are_json(tmp_path):
    """Test that 30 requests spread over two workers all appear in one scrape."""
    url = f"sqlite:///{tmp_path}/serve.sqlite3"
    setup = create_app({**TEST_SETTINGS, "database_url": url})
    command.upgrade(alembic_config(setup.extensions["idp.settings"].sqlalchemy_url), "head")
    with setup.app_context():
        keys.ensure_keys()
        db.session.commit()
        db.engine.dispose()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")  # a previous run's file
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({"IDP_DATABASE_URL": url, "IDP_ISSUER": base, "IDP_ENVIRONMENT": "development",
                "IDP_GUNICORN_WORKERS": "2", "IDP_LOG_FORMAT": "json",
                "IDP_KEY_PUBLISH_DELAY": "3600",
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    log = (tmp_path / "stderr.log").open("w")
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "idp.cli", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "idp serve exited"
            try:
                if requests.get(base + "/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "idp serve did not start"
            time.sleep(0.2)
        ready = requests.get(base + "/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        for _ in range(30):
            # A new connection each time, so both workers get some.
            assert requests.get(base + "/jwks.json", timeout=5,
                                headers={"Connection": "close"}).status_code == 200
        requests.get(base + "/authorize?client_id=mc_x&login_hint=hanako%40example.jp",
                     timeout=5)
        text = requests.get(base + "/metrics", timeout=5).text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        key = ("machi_id_http_requests_total",
               (("endpoint", "oauth.jwks"), ("method", "GET"), ("status", "200")))
        assert samples[key] == 30
        assert ("machi_id_signing_keys", (("alg", "RS256"), ("state", "active"))) in samples
        pids = {path.name.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
        assert "1.db" not in pids and len(pids) >= 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.strip()]
    requests_logged = [line for line in parsed if line.get("logger") == "idp.request"]
    assert len(requests_logged) >= 31
    assert all(line["request_id"] != "-" for line in requests_logged)
    assert "hanako" not in "\n".join(lines)
