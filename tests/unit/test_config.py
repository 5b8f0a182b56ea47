"""Settings: defaults, environment and file overrides, and the start-up refusals."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from idp import create_app
from idp.cli import main
from idp.config import DEFAULT_SECRET_KEY
from idp.config import Settings
from idp.config import SettingsError

SMTP_URL = "smtps://machi:secret@mail.example.jp"
KEK = "ZmFrZS1rZXktZW5jcnlwdGlvbi1rZXktZm9yLXRlc3Q="  # a test Fernet key
STRONG_KEY = "k" * 32
# Nothing listens there: start-up and discovery must not need Redis.
REDIS_URL = "redis://127.0.0.1:1/0"
PRODUCTION = {"environment": "production", "issuer": "https://idp.example.jp",
              "secret_key": STRONG_KEY, "smtp_url": SMTP_URL, "key_encryption_key": KEK}


def test_defaults_load():
    """Test that the defaults file alone gives a valid development configuration."""
    settings = Settings.load(environ={})
    assert settings.environment == "development"
    assert settings.issuer == "http://127.0.0.1:5000"
    assert settings.secret_key == DEFAULT_SECRET_KEY
    assert settings.authorization_code_ttl == 300
    assert settings.id_token_default_alg == "RS256"
    assert settings.is_production is False


def test_environment_variable_overrides_default():
    """Test that an IDP_* variable overrides the defaults file."""
    settings = Settings.load(environ={"IDP_CONSORTIUM_NAME_EN": "Test Consortium",
                                      "IDP_ISSUER": "https://idp.example.jp"})
    assert settings.consortium_name_en == "Test Consortium"
    assert settings.issuer == "https://idp.example.jp"


def test_environment_variable_is_coerced_to_int():
    """Test that an integer setting given as a string variable becomes an int."""
    settings = Settings.load(environ={"IDP_ACCESS_TOKEN_TTL": "120"})
    assert settings.access_token_ttl == 120
    assert isinstance(settings.access_token_ttl, int)


def test_non_integer_environment_variable_is_rejected():
    """Test that a non-numeric value for an integer setting raises SettingsError."""
    with pytest.raises(SettingsError, match="access_token_ttl"):
        Settings.load(environ={"IDP_ACCESS_TOKEN_TTL": "an hour"})


def test_overrides_win_over_environment():
    """Test that explicit overrides take precedence over IDP_* variables."""
    settings = Settings.load({"access_token_ttl": 60}, environ={"IDP_ACCESS_TOKEN_TTL": "120"})
    assert settings.access_token_ttl == 60


def test_config_file_is_read(tmp_path):
    """Test that the TOML file named by IDP_CONFIG_FILE overrides the defaults."""
    path = tmp_path / "machi.toml"
    path.write_text('consortium_name_en = "From File"\nid_token_ttl = 900\n', encoding="utf-8")
    settings = Settings.load(environ={"IDP_CONFIG_FILE": str(path)})
    assert settings.consortium_name_en == "From File"
    assert settings.id_token_ttl == 900


def test_environment_variable_wins_over_config_file(tmp_path):
    """Test that an IDP_* variable overrides the same key in IDP_CONFIG_FILE."""
    path = tmp_path / "machi.toml"
    path.write_text("id_token_ttl = 900\n", encoding="utf-8")
    settings = Settings.load(environ={"IDP_CONFIG_FILE": str(path), "IDP_ID_TOKEN_TTL": "600"})
    assert settings.id_token_ttl == 600


def test_unknown_key_in_config_file_is_rejected(tmp_path):
    """Test that an unknown key in the config file raises SettingsError naming it."""
    path = tmp_path / "machi.toml"
    path.write_text('isuer = "https://idp.example.jp"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="isuer"):
        Settings.load(environ={"IDP_CONFIG_FILE": str(path)})


def test_unknown_override_is_rejected():
    """Test that an unknown override key raises SettingsError naming it."""
    with pytest.raises(SettingsError, match="no_such_setting"):
        Settings.load({"no_such_setting": 1}, environ={})


@pytest.mark.parametrize("issuer", ["http://idp.example.jp", "http://192.0.2.10:5000"])
def test_http_issuer_on_public_host_is_refused(issuer):
    """Test that an http issuer on a non-loopback host raises SettingsError."""
    with pytest.raises(SettingsError, match="https"):
        Settings.load({"issuer": issuer}, environ={})


@pytest.mark.parametrize("issuer", ["http://127.0.0.1:5000", "http://[::1]:8000",
                                    "http://localhost"])
def test_http_issuer_on_loopback_is_accepted(issuer):
    """Test that an http issuer on a loopback host loads in development."""
    assert Settings.load({"issuer": issuer}, environ={}).issuer == issuer


def test_issuer_with_query_is_refused():
    """Test that an issuer with a query string raises SettingsError (OIDC Discovery §3)."""
    with pytest.raises(SettingsError, match="query"):
        Settings.load({"issuer": "https://idp.example.jp/?tenant=1"}, environ={})


def test_unknown_log_level_is_refused():
    """Test that a log_level Python logging does not know raises SettingsError."""
    with pytest.raises(SettingsError, match="log_level"):
        Settings.load({"log_level": "LOUD"}, environ={})


def test_missing_config_file_is_refused(tmp_path):
    """Test that an IDP_CONFIG_FILE that does not exist raises SettingsError naming it."""
    with pytest.raises(SettingsError, match="missing.toml"):
        Settings.load(environ={"IDP_CONFIG_FILE": str(tmp_path / "missing.toml")})


def test_malformed_config_file_is_refused(tmp_path):
    """Test that an IDP_CONFIG_FILE that is not valid TOML raises SettingsError."""
    path = tmp_path / "bad.toml"
    path.write_text("issuer = \n", encoding="utf-8")
    with pytest.raises(SettingsError):
        Settings.load(environ={"IDP_CONFIG_FILE": str(path)})


def test_production_refuses_default_secret_key():
    """Test that production with the built-in secret key raises SettingsError."""
    with pytest.raises(SettingsError, match="secret_key"):
        Settings.load({"environment": "production", "issuer": "https://idp.example.jp"},
                      environ={})


def test_production_refuses_short_secret_key():
    """Test that production with a secret key under 32 characters raises SettingsError."""
    with pytest.raises(SettingsError, match="at least 32"):
        Settings.load({"environment": "production", "issuer": "https://idp.example.jp",
                       "secret_key": "k" * 31}, environ={})


def test_production_refuses_loopback_http_issuer():
    """Test that production refuses an http issuer even on a loopback host."""
    with pytest.raises(SettingsError, match="https in production"):
        Settings.load({"environment": "production", "issuer": "http://127.0.0.1:5000",
                       "secret_key": STRONG_KEY}, environ={})


def test_production_accepts_https_issuer_and_strong_key():
    """Test that production loads with an https issuer and a 32+ character key."""
    settings = Settings.load({"environment": "production", "issuer": "https://idp.example.jp",
                              "secret_key": STRONG_KEY, "smtp_url": SMTP_URL, "key_encryption_key": KEK,
                              "redis_url": REDIS_URL}, environ={})
    assert settings.is_production
    assert settings.secure_cookies is True


def test_production_refuses_to_start_without_a_mail_server():
    """Test that production without smtp_url raises SettingsError (mail is never dropped)."""
    with pytest.raises(SettingsError, match="smtp_url must be set in production"):
        Settings.load({"environment": "production", "issuer": "https://idp.example.jp",
                       "secret_key": STRONG_KEY}, environ={})


def test_production_refuses_to_start_without_redis():
    """Test that production without redis_url raises SettingsError saying why and what to set:
    each worker would count rate limits alone (two workers, twice the guesses)."""
    with pytest.raises(SettingsError, match="redis_url must be set in production") as error:
        Settings.load(PRODUCTION, environ={})
    assert "IDP_REDIS_URL" in str(error.value) and "IDP_MEMORY_RATE_LIMITS" in str(error.value)
    assert Settings.load({**PRODUCTION, "redis_url": REDIS_URL}, environ={}).redis_url


def test_memory_rate_limits_is_an_opt_out_for_one_process_only():
    """Test that production without Redis starts only with memory_rate_limits and a single
    worker, and that development and test need neither."""
    settings = Settings.load({**PRODUCTION, "memory_rate_limits": "true", "gunicorn_workers": 1},
                             environ={})
    assert settings.memory_rate_limits is True and settings.redis_url == ""
    with pytest.raises(SettingsError, match="memory_rate_limits needs gunicorn_workers = 1"):
        Settings.load({**PRODUCTION, "memory_rate_limits": True}, environ={})
    assert Settings.load({"environment": "test"}, environ={}).redis_url == ""


@pytest.mark.parametrize(("name", "value", "message"), [
    ("redis_url", "http://127.0.0.1:6379", "redis_url must be redis://"),
    ("redis_timeout_ms", 0, "redis_timeout_ms"), ("redis_cooldown", 0, "redis_cooldown")])
def test_redis_settings_are_validated(name, value, message):
    """Test that a redis_url that is not a Redis URL, and timeouts out of range, are refused."""
    with pytest.raises(SettingsError, match=message):
        Settings.load({name: value}, environ={})


def test_cli_refuses_production_without_redis():
    """Test that `idp` in production without IDP_REDIS_URL exits with the message, no traceback."""
    env = {f"IDP_{k.upper()}": v for k, v in PRODUCTION.items()}
    result = CliRunner().invoke(main, ["keys", "list"], env={**env, "IDP_LOG_LEVEL": "WARNING"})
    assert result.exit_code != 0
    assert "redis_url must be set in production" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("url", ["http://mail.example.jp", "smtp://", "mail.example.jp:25"])
def test_smtp_url_must_be_smtp_or_smtps(url):
    """Test that an smtp_url that is not smtp:// or smtps:// with a host is refused."""
    with pytest.raises(SettingsError, match="smtp_url must be"):
        Settings.load({"smtp_url": url}, environ={})


@pytest.mark.parametrize(("name", "value"), [("email_link_ttl", 0), ("password_reset_ttl", 0),
                                             ("password_reset_ttl", 86401),
                                             ("mail_from", "not-an-address")])
def test_mail_settings_are_validated(name, value):
    """Test that link lifetimes and the sender address are checked at start-up."""
    with pytest.raises(SettingsError, match=name):
        Settings.load({name: value}, environ={})


def test_mail_sender_defaults_to_the_issuer_host():
    """Test that an empty mail_from becomes no-reply@<issuer host>."""
    settings = Settings.load({"issuer": "https://id.example.jp"}, environ={})
    assert settings.mail_sender == "no-reply@id.example.jp"


def test_unknown_environment_is_refused():
    """Test that an environment name outside development/test/production is refused."""
    with pytest.raises(SettingsError, match="environment"):
        Settings.load({"environment": "staging"}, environ={})


def test_secure_cookies_follow_issuer_scheme():
    """Test that secure_cookies is true for an https issuer and false for loopback http."""
    assert Settings.load({"issuer": "https://idp.example.jp"}, environ={}).secure_cookies
    assert not Settings.load({"issuer": "http://localhost"}, environ={}).secure_cookies


def test_production_app_sets_secure_cookie_and_hsts(migrated):
    """Test that a production app with an https issuer marks cookies Secure and sends HSTS."""
    app = create_app({"environment": "production", "issuer": "https://idp.example.jp",
                      "secret_key": STRONG_KEY, "database_url": migrated,
                      "smtp_url": SMTP_URL, "log_level": "WARNING",
                      "key_encryption_key": KEK, "redis_url": REDIS_URL})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = app.test_client().get("/.well-known/openid-configuration",
                                     base_url="https://idp.example.jp")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_loopback_app_sends_no_hsts(app, client):
    """Test that an http loopback issuer gets no HSTS header and no Secure cookies."""
    assert app.config["SESSION_COOKIE_SECURE"] is False
    response = client.get("/.well-known/openid-configuration")
    assert "Strict-Transport-Security" not in response.headers


def test_cli_refuses_invalid_settings():
    """Test that `idp` exits non-zero with a clear message when the settings are invalid."""
    result = CliRunner().invoke(main, ["keys", "list"],
                                env={"IDP_ISSUER": "http://idp.example.jp",
                                     "IDP_LOG_LEVEL": "WARNING"})
    assert result.exit_code != 0
    assert "issuer must use https" in result.output
    assert "Traceback" not in result.output


def test_cli_reports_a_missing_config_file_clearly(tmp_path):
    """Test that `idp` exits non-zero with a message naming a missing IDP_CONFIG_FILE."""
    missing = tmp_path / "missing.toml"
    result = CliRunner().invoke(main, ["keys", "list"],
                                env={"IDP_CONFIG_FILE": str(missing),
                                     "IDP_LOG_LEVEL": "WARNING"})
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert str(missing) in result.output


@pytest.mark.parametrize("name", ["city_export_k", "city_export_l"])
def test_city_export_floors_below_two_are_refused(name):
    """Test that start-up refuses a k or l below 2 for the city export (docs/city-export.md)."""
    with pytest.raises(SettingsError, match=name):
        Settings.load(environ={f"IDP_{name.upper()}": "1"})
    assert getattr(Settings.load(environ={f"IDP_{name.upper()}": "2"}), name) == 2
