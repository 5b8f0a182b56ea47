"""Flask extensions, created unbound and bound in the app factory."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from idp.db import Base

db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
babel = Babel()
# Storage comes from the app config: Redis when IDP_REDIS_URL is set (shared by
# every worker and node; behind a circuit breaker with an in-memory fallback,
# idp.limiter_storage), memory otherwise. No X-RateLimit-* headers on every
# answer: reading the window for them cost a second Redis round trip per
# limited request (docs/performance.md); a 429 says Retry-After (idp.errors).
limiter = Limiter(key_func=get_remote_address, headers_enabled=False)
