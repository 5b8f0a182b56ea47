"""Machi ID: the consortium's OpenID Connect identity provider."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Flask
from flask import url_for

from idp import config
from idp import limiter_storage
from idp import logs
from idp import metrics
from idp.config import ROOT
from idp.config import Settings


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Settings → extensions → blueprints → OAuth server; nothing else."""
    settings = Settings.load(overrides)
    logs.configure(settings)
    app = Flask(
        __name__,
        template_folder=str(ROOT / "consent_ui" / "templates"),
        static_folder=str(ROOT / "consent_ui" / "static"),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.sqlalchemy_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings),
        SESSION_COOKIE_NAME="machi_id_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.session_ttl),
        PREFERRED_URL_SCHEME="https" if settings.secure_cookies else "http",
        BABEL_DEFAULT_LOCALE="ja",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "consent_ui" / "translations"),
        WTF_CSRF_TIME_LIMIT=3600,
        WTF_CSRF_SSL_STRICT=False,
        TESTING=settings.environment == "test",
        RATELIMIT_STORAGE_URI=(limiter_storage.storage_uri(settings.redis_url)
                               if settings.redis_url else "memory://"),
        RATELIMIT_STORAGE_OPTIONS=(limiter_storage.storage_options(
            settings.redis_timeout_ms, settings.redis_cooldown) if settings.redis_url else {}),
        RATELIMIT_KEY_PREFIX="machi-id",
    )
    app.extensions[config.EXTENSION] = settings
    # First hooks of all: the request id, and the time, status, log line and
    # metrics of the whole answer (idp.logs, idp.metrics).
    logs.init_app(app)
    from idp.oauth.direct import DirectAnswers
    from idp.proxy import wrap

    # Beneath Flask, the common introspection, client-credentials token and UserInfo
    # call, answered without it (idp.oauth.direct); inside the forwarded-headers
    # middleware, like Flask.
    direct = app.extensions["idp.direct"] = DirectAnswers(app, app.wsgi_app)
    app.wsgi_app = wrap(direct, settings.trusted_proxies, settings.proxy_hops)

    from idp import db as database
    from idp import errors
    from idp import http
    from idp import inputs
    from idp.audit import service as audit
    from idp.extensions import babel
    from idp.extensions import csrf
    from idp.extensions import db
    from idp.extensions import end_unit_of_work
    from idp.extensions import limiter
    from idp.extensions import skip_unlimited
    from idp.interaction.locale import select_locale

    database.init_app(app)  # SQLite pragmas and BEGIN IMMEDIATE
    audit.init_app(app)  # the audit chain is sealed at each commit
    db.init_app(app)
    with app.app_context():
        metrics.watch_pool(db.engine)
        database.ping_idle_connections(db.engine)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    http.init_app(app, settings)
    inputs.init_app(app)
    errors.init_app(app)

    from idp.api.registered_data import bp as registered_data_bp
    from idp.api.sensor_counts import bp as sensor_api_bp
    from idp.api.touch_events import bp as kiosk_api_bp
    from idp.interaction.views import bp as interaction_bp
    from idp.interaction.views.device import bp as device_bp
    from idp.oauth.server import build_authorization_server
    from idp.oauth.views import bp as oauth_bp
    from idp.observability import bp as observability_bp

    app.register_blueprint(observability_bp)
    app.register_blueprint(oauth_bp)
    app.register_blueprint(interaction_bp)
    app.register_blueprint(device_bp)
    app.register_blueprint(kiosk_api_bp)
    app.register_blueprint(sensor_api_bp)
    app.register_blueprint(registered_data_bp)
    from idp.self_service import bp as account_bp
    from idp.self_service.outbox import bp as outbox_bp

    app.register_blueprint(account_bp)
    from idp.transparency import bp as transparency_bp

    app.register_blueprint(transparency_bp)
    app.register_blueprint(outbox_bp)
    from idp.admin.views import bp as admin_bp
    from idp.oauth import backchannel
    from idp.oauth import security_events
    from idp.outbox import service as outbox

    app.register_blueprint(admin_bp)
    from idp.exchange import scopes as exchange_scopes
    from idp.mail import service as mail

    outbox.init_app(app)
    backchannel.init_app(app)
    security_events.init_app(app)
    mail.init_app(app)
    exchange_scopes.register()  # registered:<category>, contribute:<category>
    build_authorization_server(app, settings)
    _template_context(app, settings)
    # Registered last so it runs first of the app's after_request hooks (blueprint
    # hooks run before it): the commit precedes the security headers of the answer.
    app.after_request(end_unit_of_work)
    skip_unlimited(app)
    return app


def _engine_options(settings: Settings) -> dict[str, Any]:
    # hide_parameters: a database error's message (logged) never carries the
    # statement's values (emails, digests, names).
    if settings.sqlalchemy_url.startswith("sqlite"):
        # Writers wait for each other instead of failing with "database is locked".
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    # No pool_pre_ping: idle connections are pinged at checkout instead (idp.db).
    # Two connections per thread: one for the request it serves, one kept in autocommit
    # for the statements it runs alone (idp.db.AutocommitConnections keeps half the pool).
    return {"connect_args": {"connect_timeout": 5}, "hide_parameters": True,
            "pool_size": 2 * settings.gunicorn_threads}


def _template_context(app: Flask, settings: Settings) -> None:
    from flask import g
    from flask import request
    from flask_babel import get_locale

    from idp.interaction.flow import current_resident

    @app.context_processor
    def common() -> dict[str, Any]:
        locale = str(get_locale())

        def locale_url(code: str) -> str:
            path = request.full_path.rstrip("?") if request.method == "GET" else request.path
            return url_for("interaction.switch_locale", code=code, next=path)

        return {
            "consortium_name": (settings.consortium_name_en if locale == "en"
                                else settings.consortium_name),
            "current_locale": locale,
            "locale_url": locale_url,
            "current_resident": (None if g.get("idp_database_unavailable")
                                 else current_resident()),
        }
