"""The database's own refusal to change the audit trail (triggers).

``audit_events``: UPDATE and DELETE are refused (TRUNCATE too, on
PostgreSQL), except two UPDATEs:

- sealing: setting ``seq``, ``prev_digest``, ``digest`` and ``format`` on an
  entry that has none of them yet, everything else unchanged — once per row,
  by the sealer (``idp.audit.chain.seal``);
- redaction: setting the personal columns (``resident_id``, ``ip``,
  ``user_agent``) and ``personal_salt`` to NULL while everything else stays as
  it was — what an account deletion does
  (``idp.audit.service.deidentify_resident``), sealed or not.

``audit_heads``: no UPDATE, DELETE or TRUNCATE at all.

The migration that introduced sealing created these triggers with the same
statements (migrations are frozen, so it carries its own copy; a test checks
that the two agree). The triggers protect against the application and its
database role doing what they should not; a superuser can drop them, which is
why the chain exists, why its heads are signed, and why a head is anchored
outside the database (docs/admin.md).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

MESSAGE = "audit_events is append-only"

# Columns that neither sealing nor redaction may change.
_FIXED = """NEW.id IS OLD.id AND NEW.tag IS OLD.tag AND NEW.at IS OLD.at AND NEW.actor IS OLD.actor
  AND NEW.admin_id IS OLD.admin_id AND NEW.client_id IS OLD.client_id
  AND NEW.company_id IS OLD.company_id AND NEW.data IS OLD.data
  AND NEW.personal_digest IS OLD.personal_digest AND NEW.xid IS OLD.xid"""

SQLITE_CREATE = [
    f"""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT ({_FIXED} AND ((
  NEW.seq IS OLD.seq AND NEW.format IS OLD.format
  AND NEW.prev_digest IS OLD.prev_digest AND NEW.digest IS OLD.digest
  AND NEW.resident_id IS NULL AND NEW.ip IS NULL AND NEW.user_agent IS NULL
  AND NEW.personal_salt IS NULL) OR (
  OLD.seq IS NULL AND OLD.format IS NULL AND OLD.prev_digest IS NULL AND OLD.digest IS NULL
  AND NEW.seq IS NOT NULL AND NEW.format IS NOT NULL
  AND NEW.prev_digest IS NOT NULL AND NEW.digest IS NOT NULL
  AND NEW.resident_id IS OLD.resident_id AND NEW.ip IS OLD.ip
  AND NEW.user_agent IS OLD.user_agent AND NEW.personal_salt IS OLD.personal_salt)))
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_heads_no_update BEFORE UPDATE ON audit_heads
BEGIN SELECT RAISE(ABORT, 'audit_heads is append-only'); END""",
    """CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON audit_heads
BEGIN SELECT RAISE(ABORT, 'audit_heads is append-only'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_heads_no_update",
    "DROP TRIGGER IF EXISTS audit_heads_no_delete",
]
SQLITE_TRIGGERS = ("audit_events_no_update", "audit_events_no_delete",
                   "audit_heads_no_update", "audit_heads_no_delete")

POSTGRESQL_CREATE = [
    """CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND NEW.resident_id IS NULL AND NEW.ip IS NULL AND NEW.user_agent IS NULL
     AND NEW.personal_salt IS NULL
     AND (to_jsonb(NEW) - ARRAY['resident_id', 'ip', 'user_agent', 'personal_salt'])
         = (to_jsonb(OLD) - ARRAY['resident_id', 'ip', 'user_agent', 'personal_salt']) THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE'
     AND OLD.seq IS NULL AND OLD.format IS NULL AND OLD.prev_digest IS NULL
     AND OLD.digest IS NULL
     AND NEW.seq IS NOT NULL AND NEW.format IS NOT NULL AND NEW.prev_digest IS NOT NULL
     AND NEW.digest IS NOT NULL
     AND (to_jsonb(NEW) - ARRAY['seq', 'format', 'prev_digest', 'digest'])
         = (to_jsonb(OLD) - ARRAY['seq', 'format', 'prev_digest', 'digest']) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'integrity_constraint_violation';
END
$$""",
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE FUNCTION audit_heads_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_heads is append-only' USING ERRCODE = 'integrity_constraint_violation';
END
$$""",
    """CREATE TRIGGER audit_heads_append_only BEFORE UPDATE OR DELETE ON audit_heads
FOR EACH ROW EXECUTE FUNCTION audit_heads_append_only()""",
    """CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON audit_heads
FOR EACH STATEMENT EXECUTE FUNCTION audit_heads_append_only()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_heads_append_only ON audit_heads",
    "DROP TRIGGER IF EXISTS audit_heads_no_truncate ON audit_heads",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
    "DROP FUNCTION IF EXISTS audit_heads_append_only()",
]
POSTGRESQL_TRIGGERS = ("audit_events_append_only", "audit_events_no_truncate",
                       "audit_heads_append_only", "audit_heads_no_truncate")


def create_statements(dialect: str) -> list[str]:
    return POSTGRESQL_CREATE if dialect == "postgresql" else SQLITE_CREATE


def drop_statements(dialect: str) -> list[str]:
    return POSTGRESQL_DROP if dialect == "postgresql" else SQLITE_DROP


def install(connection: Connection) -> None:
    for statement in create_statements(connection.dialect.name):
        connection.execute(text(statement))


def remove(connection: Connection) -> None:
    for statement in drop_statements(connection.dialect.name):
        connection.execute(text(statement))


def installed(connection: Connection) -> bool:
    """True when every guard trigger is present (``idp audit verify`` reports it)."""
    if connection.dialect.name == "postgresql":
        names = set(connection.scalars(text(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' "
            "AND tgrelid IN ('audit_events'::regclass, 'audit_heads'::regclass)")))
        return set(POSTGRESQL_TRIGGERS) <= names
    names = set(connection.scalars(text(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    return set(SQLITE_TRIGGERS) <= names
