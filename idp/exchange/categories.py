"""Categories of registered data: the defaults of seed 000, and values checked against
each category's JSON Schema.

The city asked the downtown database for language, area of residence (prefecture
and city), gender, income band (総務省統計局's bands, 万円), interests, birth year,
household (members, children) and occupation (事業主, 会社員, 公務員 …); gender and
birth year are already in the resident's profile, the rest can only come from member
companies' services. ``service_usage`` is what a company's service saw the resident
use (seed 004's service-usage data).
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from dataclasses import dataclass
from typing import Any

from flask import current_app
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow
from idp.exchange.models import SENSITIVITIES
from idp.exchange.models import Category
from idp.exchange.models import DataContract
from idp.exchange.models import RegisteredRecord
from idp.extensions import db

KEY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
MAX_VALUE_BYTES = 4096

INCOME_BANDS = ["-300", "300-500", "500-700", "700-1000", "1000-1500", "1500-"]
OCCUPATIONS = ["self_employed", "company_employee", "public_servant", "part_time",
               "student", "homemaker", "retired", "unemployed", "other"]


@dataclass(frozen=True)
class Default:
    key: str
    label_ja: str
    label_en: str
    schema: dict[str, Any]
    sensitivity: str = "normal"
    retention_days: int = 365
    statistics: bool = True


DEFAULTS: tuple[Default, ...] = (
    Default("language", "使用言語", "Language",
            {"type": "string", "pattern": "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
             "description": "A BCP 47 language tag, e.g. ja, en, zh-Hant"}),
    Default("prefecture", "居住エリア（都道府県・市区）", "Area of residence (prefecture and city)",
            {"type": "object", "required": ["prefecture"], "additionalProperties": False,
             "properties": {"prefecture": {"type": "string", "minLength": 1, "maxLength": 10},
                            "city": {"type": "string", "minLength": 1, "maxLength": 40}}}),
    Default("income_band", "年収", "Annual income band",
            {"type": "string", "enum": INCOME_BANDS,
             "description": "万円 per year, in the Statistics Bureau's bands"},
            sensitivity="sensitive"),
    Default("interests", "興味のある項目", "Interests",
            {"type": "array", "maxItems": 20, "uniqueItems": True,
             "items": {"type": "string", "minLength": 1, "maxLength": 40}}),
    Default("household", "家族構成", "Household",
            {"type": "object", "required": ["members"], "additionalProperties": False,
             "properties": {"members": {"type": "integer", "minimum": 1, "maximum": 20},
                            "children": {"type": "integer", "minimum": 0, "maximum": 19}}},
            sensitivity="sensitive"),
    Default("occupation", "職業", "Occupation", {"type": "string", "enum": OCCUPATIONS}),
    Default("service_usage", "サービス利用状況", "Service usage",
            {"type": "object", "required": ["service"], "additionalProperties": False,
             "properties": {"service": {"type": "string", "minLength": 1, "maxLength": 100},
                            "visits": {"type": "integer", "minimum": 0},
                            "last_used": {"type": "string", "format": "date"}}},
            retention_days=180, statistics=False),
)


# The keys in use, per app, for the scopes discovery lists (the discovery document is
# served without a query): a category created or retired here is seen at once, on
# another node within this time.
KEYS_CACHE_TTL = dt.timedelta(seconds=30)
KEYS_RETRY = dt.timedelta(seconds=5)
_keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class CategoryError(ValueError):
    pass


def keys_in_use() -> tuple[str, ...]:
    """The keys of the categories in use, from this process's short cache."""
    app = current_app._get_current_object()
    now = utcnow()
    cached = _keys.get(app)
    if cached is not None and now < cached[0]:
        return cached[1]
    try:
        keys = tuple(c.key for c in in_use())
    except SQLAlchemyError:
        # The database is unreachable: discovery must still answer (it needs no
        # database otherwise), with the keys last seen, or none; asked again soon.
        db.session.rollback()
        keys = cached[1] if cached is not None else ()
        _keys[app] = (now + KEYS_RETRY, keys)
        return keys
    _keys[app] = (now + KEYS_CACHE_TTL, keys)
    return keys


def forget_cache() -> None:
    """Drop this process's cached keys (creating or retiring a category calls it)."""
    _keys.clear()


def get(key: str) -> Category | None:
    """The category of this key if it is in use (not retired)."""
    if not isinstance(key, str) or not KEY.match(key):
        return None
    category = db.session.get(Category, key)
    return category if category is not None and category.retired_at is None else None


def in_use() -> list[Category]:
    return list(db.session.scalars(
        select(Category).where(Category.retired_at.is_(None)).order_by(Category.created_at,
                                                                        Category.key)))


def label(category: Category, locale: str) -> str:
    return category.label_ja if locale.startswith("ja") else category.label_en


def check_schema(schema: Any) -> None:
    """Refuse a schema that is not a JSON Schema (Draft 2020-12) object."""
    if not isinstance(schema, dict):
        raise CategoryError("the schema must be a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise CategoryError(f"not a valid JSON Schema: {error.message}") from None


def create(key: str, label_ja: str, label_en: str, schema: dict[str, Any], *,
           sensitivity: str = "normal", retention_days: int = 365,
           statistics: bool = False, actor: str | None = None) -> Category:
    if not isinstance(key, str) or not KEY.match(key):
        raise CategoryError("the key must be 2-40 lowercase letters, digits or _, "
                            "starting with a letter")
    if db.session.get(Category, key) is not None:
        raise CategoryError(f"a category {key!r} exists already")
    _check_labels(label_ja, label_en)
    if sensitivity not in SENSITIVITIES:
        raise CategoryError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}")
    _check_retention(retention_days)
    check_schema(schema)
    category = Category(key=key, label_ja=label_ja.strip()[:100], label_en=label_en.strip()[:100],
                        value_schema=schema, sensitivity=sensitivity,
                        retention_days=retention_days, statistics=statistics)
    db.session.add(category)
    db.session.flush()
    forget_cache()
    record(AuditTag.CATEGORY_CREATE, actor=actor, category=key, sensitivity=sensitivity,
           retention_days=retention_days, statistics=statistics)
    return category


def _check_labels(label_ja: str, label_en: str) -> None:
    if not label_ja.strip() or not label_en.strip():
        raise CategoryError("both labels (ja, en) are required")


def _check_retention(retention_days: Any) -> None:
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) \
            or not 1 <= retention_days <= 3650:
        raise CategoryError("the retention period must be 1 to 3650 days")


def stored_values(key: str) -> int:
    """How many contributed records of the category are held (any company)."""
    return db.session.scalar(select(func.count()).select_from(RegisteredRecord)
                             .where(RegisteredRecord.category == key)) or 0


def update(key: str, *, label_ja: str | None = None, label_en: str | None = None,
           schema: dict[str, Any] | None = None, retention_days: int | None = None,
           statistics: bool | None = None, actor: str | None = None) -> tuple[Category, list[str]]:
    """Change a category in use: its labels, retention, statistics flag, and its schema
    only while no value of it is held (values already accepted must keep fitting the
    schema they were checked against). None leaves a field as it is. A new retention
    applies to records received from then on: a record's expiry is fixed when it is
    received. Audited with the fields changed; (the category, the fields changed)."""
    category = get(key)
    if category is None:
        raise CategoryError(f"no category {key!r} in use")
    new_ja = category.label_ja if label_ja is None else label_ja.strip()[:100]
    new_en = category.label_en if label_en is None else label_en.strip()[:100]
    _check_labels(new_ja, new_en)
    if retention_days is not None:
        _check_retention(retention_days)
    if schema is not None:
        check_schema(schema)
        if schema != category.value_schema and (held := stored_values(key)):
            raise CategoryError(f"the schema cannot change while values of {key!r} are held "
                                f"({held}); they were checked against the current one")
    wanted = {"label_ja": new_ja, "label_en": new_en, "value_schema": schema,
              "retention_days": retention_days, "statistics": statistics}
    changed = [name for name, value in wanted.items()
               if value is not None and value != getattr(category, name)]
    for name in changed:
        setattr(category, name, wanted[name])
    if changed:
        db.session.flush()
        record(AuditTag.CATEGORY_UPDATE, actor=actor, category=key, changed=changed,
               **{name: wanted[name] for name in changed if name != "value_schema"})
    return category, changed


def retire(key: str, *, actor: str | None = None) -> Category:
    """Take a category out of use: it can no longer be contributed, released, asked
    for (its scopes leave discovery) or named in a new contract. Refused while a
    contract not ended and not yet run out names it: end those first (which ends
    their data links and tells the recipients, ``idp.exchange.lifecycle``).
    Records already held stay until their own expiry (the residents still see,
    export and delete them). Audited."""
    category = get(key)
    if category is None:
        raise CategoryError(f"no category {key!r} in use")
    today = utcnow().date()
    naming = [c.id for c in db.session.scalars(
        select(DataContract).where(DataContract.ended_at.is_(None),
                                   DataContract.valid_until >= today)
        .order_by(DataContract.id)) if key in c.categories]
    if naming:
        raise CategoryError(f"contracts still name {key!r}: {', '.join(naming)}; "
                            f"end them first")
    category.retired_at = utcnow()
    db.session.flush()
    forget_cache()
    record(AuditTag.CATEGORY_RETIRE, actor=actor, category=key,
           records_held=stored_values(key))
    return category


def ensure_defaults() -> list[str]:
    """Create the seed-000 categories that do not exist yet; their keys."""
    created = []
    for default in DEFAULTS:
        if db.session.get(Category, default.key) is None:
            create(default.key, default.label_ja, default.label_en, default.schema,
                   sensitivity=default.sensitivity, retention_days=default.retention_days,
                   statistics=default.statistics, actor="system")
            created.append(default.key)
    return created


def validation_errors(category: Category, value: Any) -> list[str]:
    """Why a value does not fit its category's schema (empty when it fits)."""
    validator = Draft202012Validator(category.value_schema,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(str(p) for p in error.absolute_path) or 'value'}: {error.message}"
            for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path))][:5]


def retention_end(category: Category, received_at: dt.datetime | None = None) -> dt.datetime:
    return (received_at or utcnow()) + dt.timedelta(days=category.retention_days)
