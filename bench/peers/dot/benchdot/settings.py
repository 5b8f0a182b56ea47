"""A minimal Django project serving django-oauth-toolkit, a peer in Machi ID's
benchmark (bench/run.py). Only what the token and introspection endpoints need:
no sessions, messages, admin or templates. The database comes from
BENCH_DOT_DATABASE_URL (a PostgreSQL database bench/run.py creates and drops).
Persistent connections (CONN_MAX_AGE), as Machi ID keeps a SQLAlchemy pool."""

import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ["BENCH_DOT_DATABASE_URL"])

SECRET_KEY = os.environ.get("BENCH_DOT_SECRET_KEY", "bench-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "benchdot.urls"
WSGI_APPLICATION = "benchdot.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "",
        "PORT": str(_db.port or ""),
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}
OAUTH2_PROVIDER = {
    "SCOPES": {"touch_events": "Touch events", "introspection": "Introspection"},
    "DEFAULT_SCOPES": ["touch_events"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 6 * 3600,
}
# bench/run.py plays the TLS-terminating proxy, as for Machi ID (IDP_PROXY_HOPS=1):
# oauthlib refuses plain http, and the scheme comes from X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
