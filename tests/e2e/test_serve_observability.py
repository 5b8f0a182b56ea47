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
from prometheus_client.mmap_dict import MmapedDict
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


JWKS_ANSWERED = ("machi_id_http_requests_total",
                 (("endpoint", "oauth.jwks"), ("method", "GET"), ("status", "200")))


def counted_per_worker(metrics_dir) -> dict[str, float]:
    """The JWKS requests each worker's own counter file holds, by pid."""
    counted = {}
    for path in metrics_dir.glob("counter_*.db"):
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _metric, name, labels, _help = json.loads(key)
            if (name, tuple(sorted(labels.items()))) == JWKS_ANSWERED:
                counted[path.stem.rsplit("_", 1)[1]] = value
    return counted


def test_two_workers_are_summed_and_logs_are_json(tmp_path):
    """Test that requests answered by both workers (each counts some in its own file) all
    appear in one scrape."""
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
        # A new connection each time; the kernel picks the worker that accepts it, so keep
        # sending (bounded) until each of the two has counted some.
        sent = 0
        while sent < 30 or len(counted_per_worker(metrics_dir)) < 2:
            assert sent < 300, f"one worker answered all: {counted_per_worker(metrics_dir)}"
            for _ in range(10):
                assert requests.get(base + "/jwks.json", timeout=5,
                                    headers={"Connection": "close"}).status_code == 200
            sent += 10
        requests.get(base + "/authorize?client_id=mc_x&login_hint=hanako%40example.jp",
                     timeout=5)
        text = requests.get(base + "/metrics", timeout=5).text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        assert samples[JWKS_ANSWERED] == sent
        assert ("machi_id_signing_keys", (("alg", "RS256"), ("state", "active"))) in samples
        counted = counted_per_worker(metrics_dir)
        assert len(counted) == 2 and all(n > 0 for n in counted.values()), counted
        assert sum(counted.values()) == sent
        assert "1" not in counted and not (metrics_dir / "counter_1.db").exists()
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
    assert len(requests_logged) >= sent + 1
    assert all(line["request_id"] != "-" for line in requests_logged)
    assert "hanako" not in "\n".join(lines)
