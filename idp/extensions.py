"""Flask extensions, created unbound and bound in the app factory."""

from __future__ import annotations

from flask_babel import Babel
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from idp.db import Base

db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
babel = Babel()
