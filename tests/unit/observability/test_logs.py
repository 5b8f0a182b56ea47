"""Logs: one JSON object per line, the request id, and no query strings."""

from __future__ import annotations

import json
import logging
import logging.config
import re

import pytest

from idp import logs
from idp.config import Settings
from idp.config import SettingsError
from tests.helpers.logs import json_lines


@pytest.fixture
def captured(app):
    with json_lines() as lines:
        yield lines


def test_request_id_is_made_returned_and_logged(client, captured):
    """Test that each request gets a new id, returned in X-Request-ID and in its log line."""
    first = client.get("/.well-known/openid-configuration?login_hint=hanako%40example.jp")
    second = client.get("/.well-known/openid-configuration")
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
    lines = [line for line in captured() if line["logger"] == "idp.request"]
    assert [line["request_id"] for line in lines] == ids
    line = lines[0]
    assert line["method"] == "GET" and line["status"] == 200
    assert line["path"] == "/.well-known/openid-configuration"
    assert line["endpoint"] == "oauth.discovery" or line["endpoint"].endswith("discovery")
    assert isinstance(line["duration_ms"], float) and line["level"] == "INFO"
    assert "time" in line and "hanako" not in json.dumps(lines)


def test_untrusted_request_id_is_replaced(client):
    """Test that without a trusted proxy a request cannot name its own id."""
    response = client.get("/healthz", headers={"X-Request-ID": "attacker-chosen-id-1234"})
    assert response.headers["X-Request-ID"] != "attacker-chosen-id-1234"


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": "127.0.0.1"}])
def test_trusted_proxy_request_id_is_kept(client):
    """Test that the trusted proxy's X-Request-ID is used, a malformed one replaced."""
    kept = client.get("/healthz", headers={"X-Request-ID": "nginx-4f2a9c1e-77"})
    assert kept.headers["X-Request-ID"] == "nginx-4f2a9c1e-77"
    bad = client.get("/healthz", headers={"X-Request-ID": "x\"; drop"})
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["X-Request-ID"])
    other = client.get("/healthz", headers={"X-Request-ID": "nginx-4f2a9c1e-78"},
                       environ_base={"REMOTE_ADDR": "198.51.100.4"})
    assert other.headers["X-Request-ID"] != "nginx-4f2a9c1e-78"


def test_routes_with_variables_log_their_pattern(client, captured):
    """Test that a path's variables (interaction ids, resident ids) are not logged."""
    client.get("/consent/secret-interaction-uid")
    lines = [line for line in captured() if line["logger"] == "idp.request"]
    assert lines[-1]["path"] == "/consent/<uid>"
    assert "secret-interaction-uid" not in json.dumps(captured())


def test_configure_json_then_text():
    """Test that configure installs one handler and switches its format."""
    root = logging.getLogger()
    level = root.level
    try:
        logs.configure(Settings.load({"log_format": "json"}, environ={}))
        ours = [h for h in root.handlers if getattr(h, logs.HANDLER_MARK, False)]
        assert len(ours) == 1
        record = logging.LogRecord("idp.x", logging.WARNING, __file__, 1, "hello %s",
                                   ("world",), None)
        assert ours[0].filter(record)
        assert json.loads(ours[0].format(record)) == {
            "time": json.loads(ours[0].format(record))["time"], "level": "WARNING",
            "logger": "idp.x", "message": "hello world", "request_id": "-"}
        logs.configure(Settings.load({"log_format": "text"}, environ={}))
        assert len([h for h in root.handlers if getattr(h, logs.HANDLER_MARK, False)]) == 1
        assert "hello world" in ours[0].format(record)
        with pytest.raises(json.JSONDecodeError):
            json.loads(ours[0].format(record))
    finally:
        logs.configure(Settings.load({"log_format": "text"}, environ={}))
        root.setLevel(level)


def test_log_format_auto_is_json_in_production_only():
    """Test the default: JSON in production, text elsewhere; other values refused."""
    assert Settings.load({"environment": "development"}, environ={}).json_logs is False
    assert Settings.load({"log_format": "json"}, environ={}).json_logs is True
    with pytest.raises(SettingsError, match="log_format"):
        Settings.load({"log_format": "yaml"}, environ={})
    with pytest.raises(SettingsError, match="metrics_token"):
        Settings.load({"metrics_token": "short"}, environ={})
    with pytest.raises(SettingsError, match="metrics_allow"):
        Settings.load({"metrics_allow": "not-a-network"}, environ={})


def test_granian_logs_follow_the_format():
    """Test that idp serve's own log lines use the same JSON formatter."""
    config = logs.granian_log_config(Settings.load({"log_format": "json"}, environ={}))
    assert config["formatters"]["generic"]["()"] == "pythonjsonlogger.json.JsonFormatter"
    logging.config.dictConfig({**config, "loggers": {}})
