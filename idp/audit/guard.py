"""The database's own refusal to change the audit trail (triggers).

``audit_events``: UPDATE and DELETE are refused (TRUNCATE too, on
PostgreSQL), except one UPDATE: setting the personal columns
(``resident_id``, ``ip``, ``user_agent``) and ``personal_salt`` to NULL while
everything else stays as it was — the redaction an account deletion does
(``idp.audit.service.deidentify_resident``).

``audit_chain_head``: it cannot be deleted, and its ``seq`` can only grow.

The migration that introduced the chain created these triggers with the same
statements (migrations are frozen, so it carries its own copy; a test checks
that the two agree). The triggers protect against the application and its
database role doing what they should not; a superuser can drop them, which is
why the chain exists and why its head is anchored outside the database
(docs/admin.md).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

MESSAGE = "audit_events is append-only"

SQLITE_CREATE = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (NEW.id IS OLD.id AND NEW.seq IS OLD.seq AND NEW.tag IS OLD.tag AND NEW.at IS OLD.at
  AND NEW.actor IS OLD.actor AND NEW.admin_id IS OLD.admin_id
  AND NEW.client_id IS OLD.client_id AND NEW.company_id IS OLD.company_id
  AND NEW.data IS OLD.data AND NEW.personal_digest IS OLD.personal_digest
  AND NEW.prev_digest IS OLD.prev_digest AND NEW.digest IS OLD.digest
  AND NEW.resident_id IS NULL AND NEW.ip IS NULL AND NEW.user_agent IS NULL
  AND NEW.personal_salt IS NULL)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE ON audit_chain_head
WHEN NEW.seq < OLD.seq OR NEW.id IS NOT OLD.id
BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END""",
    """CREATE TRIGGER audit_chain_head_no_delete BEFORE DELETE ON audit_chain_head
BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_delete",
]
SQLITE_TRIGGERS = ("audit_events_no_update", "audit_events_no_delete",
                   "audit_chain_head_forward", "audit_chain_head_no_delete")

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
  RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'integrity_constraint_violation';
END
$$""",
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE FUNCTION audit_chain_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq AND NEW.id = OLD.id THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'the audit chain head only moves forward'
    USING ERRCODE = 'integrity_constraint_violation';
END
$$""",
    """CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE OR DELETE ON audit_chain_head
FOR EACH ROW EXECUTE FUNCTION audit_chain_head_forward()""",
    """CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_forward()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_chain_head",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
    "DROP FUNCTION IF EXISTS audit_chain_head_forward()",
]
POSTGRESQL_TRIGGERS = ("audit_events_append_only", "audit_events_no_truncate",
                       "audit_chain_head_forward", "audit_chain_head_no_truncate")


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
            "AND tgrelid IN ('audit_events'::regclass, 'audit_chain_head'::regclass)")))
        return set(POSTGRESQL_TRIGGERS) <= names
    names = set(connection.scalars(text(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")))
    return set(SQLITE_TRIGGERS) <= names
