"""Typed settings, read from ``config/defaults.toml`` and ``IDP_*`` variables.

One object, documented field by field and validated at start-up: the app
refuses to boot with settings that would be unsafe in production (an http
issuer on a non-loopback host, the default secret key outside development).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import logging
import os
import tomllib
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from idp.proxy import parse_networks
from idp.security.algorithms import SIGNING_ALGS

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = ROOT / "config" / "defaults.toml"
DEFAULT_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - refused in production
ENVIRONMENTS = ("development", "test", "production")
REDIS_SCHEMES = ("redis", "rediss", "redis+unix")


class SettingsError(ValueError):
    """The settings are invalid; the process must not start."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True)
class Settings:
    environment: str = field(
        default="development",
        metadata=_doc("development, test or production. Only development and test accept the "
                      "built-in secret key."),
    )
    issuer: str = field(
        default="http://127.0.0.1:5000",
        metadata=_doc("The OpenID Provider's issuer identifier, the base of every endpoint URL. "
                      "Must be https, except http on a loopback host (development, tests, demo)."),
    )
    secret_key: str = field(
        default=DEFAULT_SECRET_KEY,
        metadata=_doc("Signs session cookies and CSRF tokens. Must be changed (32+ characters) "
                      "outside development."),
    )
    database_url: str = field(
        default="sqlite:///var/machi-id.sqlite3",
        metadata=_doc("SQLAlchemy URL. SQLite paths are relative to the project root. "
                      "postgresql:// URLs use psycopg 3."),
    )
    redis_url: str = field(
        default="",
        metadata=_doc("Redis URL for shared state between workers and nodes (rate limits). "
                      "Required in production unless memory_rate_limits is set."),
    )
    memory_rate_limits: bool = field(
        default=False,
        metadata=_doc("Production without redis_url: count rate limits in the memory of the "
                      "one process that serves (gunicorn_workers must be 1). Each process "
                      "counts alone, so it is only right for a single process on a single "
                      "node."),
    )
    redis_timeout_ms: int = field(
        default=250,
        metadata=_doc("Connect and read timeout of each Redis call, milliseconds (no retries)."),
    )
    redis_cooldown: int = field(
        default=30,
        metadata=_doc("Seconds rate limits count in each process's memory after Redis failed, "
                      "before one call tries Redis again (circuit breaker)."),
    )
    consortium_name: str = field(
        default="札幌都心版データプラットフォーム民間推進体制",
        metadata=_doc("The consortium's name as residents see it (Japanese)."),
    )
    consortium_name_en: str = field(
        default="Sapporo Downtown Data Platform Consortium",
        metadata=_doc("The consortium's name in English."),
    )
    terms_version: str = field(
        default="2026-04",
        metadata=_doc("Current version of the consortium terms of use. A consent given under "
                      "another version is asked again."),
    )
    terms_url: str = field(
        default="",
        metadata=_doc("Where the consortium terms of use are published (shown on consent)."),
    )
    terms_contact: str = field(
        default="",
        metadata=_doc("How residents reach the consortium about the terms of use and the "
                      "consortium ID (an address or a web page); named in the terms' article on "
                      "the operator. Empty: the terms point to the contact published on this "
                      "service."),
    )
    smtp_url: str = field(
        default="",
        metadata=_doc("Outgoing mail server: smtp://[user:password@]host[:port] (STARTTLS, "
                      "required unless the host is loopback) or smtps://… (implicit TLS). "
                      "Empty: mail is written to outbox_dir (development and test only)."),
    )
    mail_from: str = field(
        default="",
        metadata=_doc("From address of the mail sent to residents; empty means "
                      "no-reply@<issuer host>."),
    )
    outbox_dir: str = field(
        default="var/outbox",
        metadata=_doc("Development outbox: without smtp_url every mail is written here as an "
                      ".eml file and listed at /dev/outbox. Relative to the project root."),
    )
    email_link_ttl: int = field(
        default=86400,
        metadata=_doc("Lifetime of registration and email verification links, seconds."),
    )
    password_reset_ttl: int = field(
        default=3600, metadata=_doc("Lifetime of a password reset link, seconds (at most 1 day).")
    )
    account_mail_limit: str = field(
        default="5 per hour",
        metadata=_doc("How often the forms that send mail (registration, password reset, "
                      "verification) may be used per client address and per target address; "
                      "a Flask-Limiter rate string."),
    )
    authorization_code_ttl: int = field(
        default=300, metadata=_doc("Lifetime of an authorization code, seconds (RFC 6749 "
                                   "§4.1.2 recommends at most 600).")
    )
    access_token_ttl: int = field(default=3600, metadata=_doc("Access token lifetime, seconds."))
    refresh_token_ttl: int = field(
        default=2592000, metadata=_doc("Refresh token lifetime, seconds (each rotation "
                                       "issues a new one with the same lifetime).")
    )
    id_token_ttl: int = field(default=3600, metadata=_doc("ID token lifetime, seconds."))
    consent_ttl_days: int = field(
        default=365, metadata=_doc("A remembered consent expires after this many days.")
    )
    session_ttl: int = field(
        default=43200, metadata=_doc("A resident's sign-in session lasts this many seconds.")
    )
    id_token_default_alg: str = field(
        default="RS256",
        metadata=_doc("ID token signing algorithm for clients that do not ask for another "
                      "(RS256 or ES256)."),
    )
    key_publish_delay: int = field(
        default=86400,
        metadata=_doc("Seconds a rotated-in signing key is published in JWKS before it signs, "
                      "so relying parties' JWKS caches pick it up first."),
    )
    jwks_cache_max_age: int = field(
        default=3600, metadata=_doc("Cache-Control max-age of the JWKS document, seconds.")
    )
    device_code_ttl: int = field(
        default=600, metadata=_doc("Lifetime of a device code and its user code, seconds "
                                   "(RFC 8628 expires_in).")
    )
    device_poll_interval: int = field(
        default=5, metadata=_doc("Seconds a kiosk must wait between polls (RFC 8628 interval); "
                                 "each slow_down adds 5.")
    )
    user_code_attempts: str = field(
        default="10 per 10 minutes",
        metadata=_doc("Wrong user codes allowed per address and per browser before 429 "
                      "(RFC 8628 §5.1); a Flask-Limiter rate string."),
    )
    login_address_limit: str = field(
        default="30 per minute",
        metadata=_doc("Sign-in attempts allowed per client address (Flask-Limiter rate string); "
                      "accounts are slowed separately by growing delays."),
    )
    key_encryption_key: str = field(
        default="",
        metadata=_doc("Fernet key (32 bytes, URL-safe base64) that encrypts signing keys at "
                      "rest. Required in production; development derives one from "
                      "secret_key."),
    )
    token_rate_limit: str = field(
        default="1200 per minute",
        metadata=_doc("Token endpoint requests allowed per client (Flask-Limiter rate string); "
                      "over it, 429 with Retry-After."),
    )
    touch_events_max_batch: int = field(
        default=1000, metadata=_doc("Most touch events accepted in one API request.")
    )
    registered_data_max_batch: int = field(
        default=500, metadata=_doc("Most records of registered data accepted in one "
                                   "POST /api/registered-data (all or nothing).")
    )
    monitoring_window_minutes: int = field(
        default=60, metadata=_doc("Length of the window the monitoring (idp monitor run) "
                                  "evaluates; a company's baseline is its own previous windows.")
    )
    monitoring_baseline_windows: int = field(
        default=24, metadata=_doc("How many previous windows make a company's baseline "
                                  "(their mean count).")
    )
    monitoring_volume_factor: int = field(
        default=5, metadata=_doc("Releases or contributions of a company in a window above "
                                 "this many times its baseline are flagged.")
    )
    monitoring_volume_minimum: int = field(
        default=100, metadata=_doc("Releases or contributions in a window below this count "
                                   "are never flagged (a quiet company's first busy hour).")
    )
    monitoring_never_served_minimum: int = field(
        default=10, metadata=_doc("Contributions in a window for this many residents the "
                                  "company never served (unknown subs, or subs it was never "
                                  "issued a token for) are flagged.")
    )
    monitoring_token_reads_factor: int = field(
        default=10, metadata=_doc("One token read (userinfo, APIs) in a window more than this "
                                  "many times the company's usual reads per token is flagged.")
    )
    monitoring_token_reads_minimum: int = field(
        default=200, metadata=_doc("Reads of one token in a window below this count are "
                                   "never flagged.")
    )
    monitoring_auth_failures_minimum: int = field(
        default=20, metadata=_doc("Failed client authentications in a window (per client id "
                                  "claimed) from this count on are flagged as a burst.")
    )
    monitoring_interval_minutes: int = field(
        default=5, metadata=_doc("How often `idp worker` runs the monitoring.")
    )
    kiosk_idle_timeout: int = field(
        default=120,
        metadata=_doc("A resident's session at a kiosk ends after this many seconds without a "
                      "touch: later touches are refused for the resident (30 to "
                      "kiosk_max_session)."),
    )
    kiosk_max_session: int = field(
        default=900,
        metadata=_doc("A resident's session at a kiosk ends this long after they approved it, "
                      "whatever the activity: the device-flow access token lives no longer, and "
                      "later touches are refused for the resident (60 to 3600)."),
    )
    city_export_k: int = field(
        default=10, metadata=_doc("The floor k of the city export and of the published "
                                  "operation statistics: a count of fewer residents (or "
                                  "events) is suppressed; an export may ask a larger k, never "
                                  "a smaller one (at least 2).")
    )
    city_export_l: int = field(
        default=3, metadata=_doc("The floor l of the city export: a breakdown of a sensitive "
                                 "category (income band, household) is published only with at "
                                 "least l distinct known values (l-diversity; at least 2).")
    )
    admin_session_idle: int = field(
        default=900,
        metadata=_doc("An admin console session ends after this many seconds without a "
                      "request."),
    )
    admin_session_max: int = field(
        default=28800,
        metadata=_doc("An admin console session ends this many seconds after sign-in, "
                      "whatever the activity."),
    )
    admin_reauth_window: int = field(
        default=300,
        metadata=_doc("Destructive admin actions (suspension, revocation, secret rotation, key "
                      "rotation, terms publication …) need a password or TOTP check within "
                      "this many seconds."),
    )
    admin_enrolment_ttl: int = field(
        default=86400,
        metadata=_doc("Lifetime of an admin's one-time enrolment link, seconds."),
    )
    admin_passkey_required: bool = field(
        default=False,
        metadata=_doc("Admins must sign in with a passkey (docs/security.md, passkeys): the "
                      "password-and-code sign-in is refused to an admin who has one, and an "
                      "admin without one can only enrol one until they do."),
    )
    admin_login_limit: str = field(
        default="10 per 15 minutes",
        metadata=_doc("Admin sign-in attempts allowed per client address; a Flask-Limiter rate "
                      "string. Each admin account is also locked for 15 minutes after 5 "
                      "failures."),
    )
    backchannel_logout_timeout: int = field(
        default=5,
        metadata=_doc("Seconds to wait for a client's back-channel logout endpoint "
                      "(OIDC Back-Channel Logout 1.0) before the delivery counts as failed."),
    )
    security_event_timeout: int = field(
        default=5,
        metadata=_doc("Seconds to wait for a company's security event receiver (RFC 8935 "
                      "push) before the delivery counts as failed and is retried."),
    )
    proofing_trust_framework: str = field(
        default="jp_machi_id_counter",
        metadata=_doc("The trust_framework value of verified_claims (OpenID Connect for Identity "
                      "Assurance 1.0): the consortium's counter procedure for identity "
                      "proofing."),
    )
    argon2_time_cost: int = field(default=3, metadata=_doc("argon2id iterations."))
    argon2_memory_cost: int = field(default=65536, metadata=_doc("argon2id memory, KiB."))
    argon2_parallelism: int = field(default=1, metadata=_doc("argon2id lanes."))
    argon2_concurrency: int = field(
        default=1,
        metadata=_doc("argon2id hashes one process runs at once (each holds "
                      "argon2_memory_cost and several cores); more sign-ins wait their turn. "
                      "One per worker process, with one worker per core, uses every core."),
    )
    proxy_hops: int = field(
        default=0,
        metadata=_doc("Number of reverse proxies in front of the IdP whose X-Forwarded-For, "
                      "-Proto and -Host headers are trusted (0: trust none)."),
    )
    trusted_proxies: str = field(
        default="",
        metadata=_doc("Comma-separated addresses or networks (e.g. 127.0.0.1, 10.0.0.0/24) of "
                      "the reverse proxies allowed to set X-Forwarded-For, -Proto and -Host. "
                      "When set, those headers count only on requests coming directly from "
                      "one of them (then proxy_hops, at least 1, are trusted) and are ignored "
                      "from anywhere else. Empty: proxy_hops alone decides, by position."),
    )
    gunicorn_workers: int = field(default=2, metadata=_doc("Worker processes of `idp serve`."))
    gunicorn_threads: int = field(default=4, metadata=_doc("Threads per worker of `idp serve`."))
    gunicorn_keepalive: int = field(
        default=5,
        metadata=_doc("0 turns HTTP keep-alive off in `idp serve`; any other value keeps it on "
                      "(granian closes an idle connection after serve_header_timeout, so keep "
                      "that above the proxy's idle timeout to its upstreams)."),
    )
    max_body_protocol: int = field(
        default=65536,
        metadata=_doc("Largest request body, bytes, at the OAuth/OIDC endpoints (/token, /revoke, "
                      "/introspect, /device_authorization, /userinfo); over it, 413 "
                      "invalid_request before the body is read."),
    )
    max_body_api: int = field(
        default=2097152,
        metadata=_doc("Largest request body, bytes, at /api/* (a full batch of touch events "
                      "fits); over it, 413 in the API's error shape."),
    )
    max_body_page: int = field(
        default=262144,
        metadata=_doc("Largest request body, bytes, of any other request (the HTML forms); "
                      "over it, a 413 page."),
    )
    serve_header_timeout: int = field(
        default=10,
        metadata=_doc("Seconds `idp serve` waits for a request's headers (granian "
                      "header_read_timeout); a client slower than that is disconnected."),
    )
    max_input_length: int = field(
        default=8192,
        metadata=_doc("Longest query, form or JSON string (name or value), characters; longer "
                      "values, and any holding NUL or a lone surrogate, are refused with 400."),
    )
    log_level: str = field(default="INFO", metadata=_doc("Python logging level."))
    log_format: str = field(
        default="auto",
        metadata=_doc("json (one JSON object per line, with the request id; for log "
                      "collectors), text (for people) or auto (json in production, text "
                      "otherwise)."),
    )
    metrics_allow: str = field(
        default="127.0.0.1/32, ::1/128",
        metadata=_doc("Comma-separated addresses or networks allowed to read /metrics (the "
                      "client address after trusted_proxies). Empty: only metrics_token."),
    )
    metrics_token: str = field(
        default="",
        metadata=_doc("A bearer secret (32+ characters) that also opens /metrics from any "
                      "address (Authorization: Bearer <token>). Empty: addresses only."),
    )
    metrics_companies: str = field(
        default="",
        metadata=_doc("Comma-separated company ids that get their own company label in the "
                      "metrics; every other company is counted as \"other\" (bounded "
                      "labels, docs/metrics.md)."),
    )
    readiness_timeout_ms: int = field(
        default=2000,
        metadata=_doc("Longest time each /readyz check (database, Redis) may take, "
                      "milliseconds."),
    )
    outbox_delivery: str = field(
        default="thread",
        metadata=_doc("Who delivers queued messages (logout tokens, security events, mail) after "
                      "their change commits: thread (a thread of the app, woken after each request "
                      "that queued one; run `idp worker` as well for retries), worker (only "
                      "`idp worker`), or inline (at the end of the request, tests only)."),
    )
    outbox_max_attempts: int = field(
        default=8,
        metadata=_doc("Attempts before a queued message becomes a dead letter (1 to 50)."),
    )
    outbox_backoff: int = field(
        default=30,
        metadata=_doc("Seconds before the first retry of a failed delivery; each further "
                      "retry waits twice as long, at most 6 hours (1 to 3600)."),
    )

    # ---- derived -------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (self.log_format == "auto" and self.is_production)

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.issuer).scheme == "https"

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url.removeprefix("sqlite:///")
            if rel and rel != ":memory:":
                path = ROOT / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                return f"sqlite:///{path}"
        if url.startswith("postgresql://"):
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    def endpoint(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    # ---- loading -------------------------------------------------------
    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None,
             environ: dict[str, str] | None = None) -> Settings:
        """Defaults file, then IDP_CONFIG_FILE, then IDP_* variables, then overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if DEFAULTS_FILE.exists():
            values.update(tomllib.loads(DEFAULTS_FILE.read_text(encoding="utf-8")))
        extra = environ.get("IDP_CONFIG_FILE")
        if extra:
            try:
                values.update(tomllib.loads(Path(extra).read_text(encoding="utf-8")))
            except OSError as exc:
                raise SettingsError(f"IDP_CONFIG_FILE {extra} cannot be read: "
                                    f"{exc.strerror}") from exc
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"IDP_CONFIG_FILE {extra} is not valid TOML: {exc}") from exc
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(names)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        for name in names:
            key = "IDP_" + name.upper()
            if key in environ:
                values[name] = environ[key]
        values.update(overrides or {})
        unknown = set(values) - set(names)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        for name, value in list(values.items()):
            values[name] = _coerce(name, names[name].type, value)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        problems: list[str] = []
        if self.environment not in ENVIRONMENTS:
            problems.append(f"environment must be one of {', '.join(ENVIRONMENTS)}")
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append("issuer must be an absolute http(s) URL")
        elif parts.query or parts.fragment:
            problems.append("issuer must not have a query or fragment (OIDC Discovery §3)")
        elif parts.scheme == "http" and not _is_loopback(parts.hostname):
            problems.append("issuer must use https unless its host is loopback "
                            "(127.0.0.1, ::1 or localhost)")
        if self.environment == "production":
            if self.secret_key == DEFAULT_SECRET_KEY:
                problems.append("secret_key is the built-in development key; set IDP_SECRET_KEY")
            elif len(self.secret_key) < 32:
                problems.append("secret_key must be at least 32 characters in production")
            if parts.scheme != "https":
                problems.append("issuer must use https in production")
        if self.id_token_default_alg not in SIGNING_ALGS:
            problems.append(f"id_token_default_alg must be one of {', '.join(SIGNING_ALGS)}")
        for name in ("authorization_code_ttl", "access_token_ttl", "refresh_token_ttl",
                     "id_token_ttl", "consent_ttl_days", "session_ttl"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if self.authorization_code_ttl > 600:
            problems.append("authorization_code_ttl must be at most 600 seconds")
        if not isinstance(logging.getLevelName(self.log_level.upper()), int):
            problems.append("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        if self.log_format not in ("auto", "json", "text"):
            problems.append("log_format must be auto, json or text")
        try:
            parse_networks(self.metrics_allow)
        except ValueError as exc:
            problems.append(f"metrics_allow: {exc}")
        if self.metrics_token and len(self.metrics_token) < 32:
            problems.append("metrics_token must be at least 32 characters")
        if not 50 <= self.readiness_timeout_ms <= 10000:
            problems.append("readiness_timeout_ms must be between 50 and 10000")
        if self.device_code_ttl <= 0 or self.device_poll_interval <= 0:
            problems.append("device_code_ttl and device_poll_interval must be positive")
        if not 1 <= self.touch_events_max_batch <= 10000:
            problems.append("touch_events_max_batch must be between 1 and 10000")
        if not 1 <= self.registered_data_max_batch <= 10000:
            problems.append("registered_data_max_batch must be between 1 and 10000")
        if min(self.monitoring_window_minutes, self.monitoring_baseline_windows,
               self.monitoring_volume_factor, self.monitoring_token_reads_factor,
               self.monitoring_interval_minutes) < 1:
            problems.append("the monitoring's window, baseline, factors and interval must be "
                            "at least 1")
        if not 60 <= self.kiosk_max_session <= 3600:
            problems.append("kiosk_max_session must be between 60 and 3600 seconds")
        if not 30 <= self.kiosk_idle_timeout <= self.kiosk_max_session:
            problems.append("kiosk_idle_timeout must be between 30 seconds and "
                            "kiosk_max_session")
        if self.city_export_k < 2:
            problems.append("city_export_k must be at least 2")
        if self.city_export_l < 2:
            problems.append("city_export_l must be at least 2")
        problems.extend(self._mail_problems())
        problems.extend(self._admin_problems())
        if self.key_encryption_key:
            try:
                if len(base64.urlsafe_b64decode(self.key_encryption_key.encode())) != 32:
                    raise ValueError
            except (ValueError, binascii.Error):
                problems.append("key_encryption_key must be a Fernet key (32 bytes, URL-safe "
                                "base64)")
        elif self.environment == "production":
            problems.append("key_encryption_key must be set in production "
                            "(IDP_KEY_ENCRYPTION_KEY)")
        problems.extend(self._redis_problems())
        if self.proxy_hops < 0:
            problems.append("proxy_hops must not be negative")
        if self.gunicorn_workers < 1 or self.gunicorn_threads < 1 or \
                not 0 <= self.gunicorn_keepalive <= 300:
            problems.append("gunicorn_workers and gunicorn_threads must be at least 1, "
                            "gunicorn_keepalive between 0 and 300 seconds")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            problems.append(f"trusted_proxies: {exc}")
        if self.key_publish_delay < 0:
            problems.append("key_publish_delay must not be negative")
        if self.outbox_delivery not in ("thread", "worker", "inline"):
            problems.append("outbox_delivery must be thread, worker or inline")
        if not 1 <= self.outbox_max_attempts <= 50 or not 1 <= self.outbox_backoff <= 3600:
            problems.append("outbox_max_attempts must be between 1 and 50, outbox_backoff "
                            "between 1 and 3600 seconds")
        if not (1024 <= self.max_body_protocol <= 10485760
                and 1024 <= self.max_body_api <= 104857600
                and 1024 <= self.max_body_page <= 104857600):
            problems.append("max_body_protocol must be between 1 KiB and 10 MiB, max_body_api and "
                            "max_body_page between 1 KiB and 100 MiB")
        if not 1 <= self.serve_header_timeout <= 300:
            problems.append("serve_header_timeout must be between 1 and 300 seconds")
        if not 256 <= self.max_input_length <= 1048576:
            problems.append("max_input_length must be between 256 and 1048576")
        if not 1 <= self.argon2_concurrency <= 64:
            problems.append("argon2_concurrency must be between 1 and 64")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))

    def _mail_problems(self) -> list[str]:
        problems = []
        if self.smtp_url:
            parts = urlsplit(self.smtp_url)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                problems.append("smtp_url must be smtp://host[:port] or smtps://host[:port]")
        elif self.environment == "production":
            # Mail carries registration, verification and reset links: without
            # a server it would be lost, so production refuses to start.
            problems.append("smtp_url must be set in production")
        if self.mail_from and "@" not in self.mail_from:
            problems.append("mail_from must be an email address")
        if self.email_link_ttl <= 0:
            problems.append("email_link_ttl must be positive")
        if not 0 < self.password_reset_ttl <= 86400:
            problems.append("password_reset_ttl must be between 1 and 86400 seconds")
        return problems

    def _admin_problems(self) -> list[str]:
        problems = []
        if not 60 <= self.admin_session_idle <= self.admin_session_max:
            problems.append("admin_session_idle must be at least 60 seconds and at most "
                            "admin_session_max")
        if not 0 < self.admin_session_max <= 86400:
            problems.append("admin_session_max must be between 1 and 86400 seconds")
        if not 30 <= self.admin_reauth_window <= 3600:
            problems.append("admin_reauth_window must be between 30 and 3600 seconds")
        if not 0 < self.admin_enrolment_ttl <= 7 * 86400:
            problems.append("admin_enrolment_ttl must be between 1 second and 7 days")
        if not 1 <= self.backchannel_logout_timeout <= 60:
            problems.append("backchannel_logout_timeout must be between 1 and 60 seconds")
        if not 1 <= self.security_event_timeout <= 60:
            problems.append("security_event_timeout must be between 1 and 60 seconds")
        if not self.proofing_trust_framework.strip():
            problems.append("proofing_trust_framework must not be empty")
        return problems

    def _redis_problems(self) -> list[str]:
        problems = []
        if self.redis_url:
            if urlsplit(self.redis_url).scheme not in REDIS_SCHEMES:
                problems.append("redis_url must be redis://, rediss:// or redis+unix://")
        elif self.environment == "production":
            # Without a shared store each worker keeps its own counts: two workers
            # let twice the guessed passwords, user codes and client secrets through.
            if not self.memory_rate_limits:
                problems.append(
                    "redis_url must be set in production (IDP_REDIS_URL): without it every "
                    "worker process counts rate limits on its own; for a single-process node "
                    "set IDP_MEMORY_RATE_LIMITS=true and IDP_GUNICORN_WORKERS=1")
            elif self.gunicorn_workers != 1:
                problems.append("memory_rate_limits needs gunicorn_workers = 1 (each worker "
                                "would count rate limits on its own)")
        if not 1 <= self.redis_timeout_ms <= 5000:
            problems.append("redis_timeout_ms must be between 1 and 5000")
        if not 1 <= self.redis_cooldown <= 3600:
            problems.append("redis_cooldown must be between 1 and 3600 seconds")
        return problems

    @property
    def mail_sender(self) -> str:
        return self.mail_from or f"no-reply@{urlsplit(self.issuer).hostname}"


EXTENSION = "idp.settings"


def settings() -> Settings:
    """The current app's settings: ``create_app`` loads them once and keeps them on the app.

    The one way code reads its configuration, so that a test's overrides reach
    every module and no module keeps a copy of its own.
    """
    return current_app.extensions[EXTENSION]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")
    try:
        if kind == "int":
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("1", "true", "yes", "on")
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name} must be {kind}, got {value!r}") from exc


def documented_fields() -> list[tuple[str, str, Any]]:
    """(name, doc, default) for every setting, for generated documentation."""
    return [(f.name, f.metadata.get("doc", ""), f.default) for f in dataclasses.fields(Settings)]
