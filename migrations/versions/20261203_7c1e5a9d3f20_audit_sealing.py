"""audit sealing: entries appended without a lock, sealed into the chain in signed batches

Revision ID: 7c1e5a9d3f20
Revises: b7e3c1d9f4a6
Create Date: 2026-12-03 09:00:00

What changes (docs/security.md#audit-trail, ``idp/audit/chain.py``):

- ``audit_events``: ``seq``, ``prev_digest`` and ``digest`` may be NULL (an entry
  not sealed yet); new ``xid`` (PostgreSQL: the appending transaction) and
  ``format`` (the digest format, 1 or 2); a partial index on the unsealed
  tail. Every existing event is already chained: it becomes a sealed entry
  with its position and digest, ``format`` 1.
- ``audit_heads`` replaces ``audit_chain_head``: one row per sealing batch. The
  old head row becomes the first head (format 1, unsigned: a migration has
  no signing key); events sealed from now on are format 2 under signed heads.
- The append-only triggers are replaced (a frozen copy of ``idp/audit/guard.py``
  below): they now also let the sealer set the chain columns once on an
  unsealed row, and guard ``audit_heads`` instead of ``audit_chain_head``.

Operational notes: one UPDATE of every audit row (``format``), and on SQLite a
rebuild of the table, inside the migration's transaction: audit_events is
locked for writing meanwhile, so run it in a maintenance window on a large
trail. Nodes of the previous version lock ``audit_chain_head``, which is gone:
stop them before upgrading (no rolling upgrade across this revision). Run
``idp worker`` (it seals every second) and then ``idp audit verify``; write
down its head as the first anchor of the sealed log.

Downgrade is for backing out right after the upgrade: it refuses once any
event has been sealed in format 2 (the previous version's code cannot verify
those) or an entry waits unsealed, and gives the old single head row back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = '7c1e5a9d3f20'
down_revision = 'b7e3c1d9f4a6'
branch_labels = None
depends_on = None

UNSEALED = sa.text("seq IS NULL")


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    for statement in (OLD_POSTGRESQL_DROP if postgresql else OLD_SQLITE_DROP):
        op.execute(statement)
    op.create_table('audit_heads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('sealed_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('format', sa.SmallInteger(), nullable=False),
    sa.Column('kid', sa.String(length=64), nullable=True),
    sa.Column('signature', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_heads')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_heads_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('xid', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('format', sa.SmallInteger(), nullable=True))
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column('prev_digest', existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column('digest', existing_type=sa.String(length=64), nullable=True)
        batch_op.create_index('ix_audit_events_unsealed', ['id'], unique=False,
                              postgresql_where=UNSEALED, sqlite_where=UNSEALED)
    op.execute("UPDATE audit_events SET format = 1 WHERE seq IS NOT NULL")
    # The old head becomes the first sealed head, as it was (a head that no longer
    # matches its events stays visible to idp audit verify).
    head = bind.execute(sa.text("SELECT seq, digest, updated_at FROM audit_chain_head "
                                "WHERE id = 1")).first()
    if head is None:
        head = bind.execute(sa.text("SELECT seq, digest, at FROM audit_events "
                                    "WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")).first()
    if head is not None and head[0] > 0:
        heads = sa.table('audit_heads', sa.column('seq', sa.BigInteger()),
                         sa.column('digest', sa.String()),
                         sa.column('sealed_at', idp.db.UTCDateTime(timezone=True)),
                         sa.column('format', sa.SmallInteger()))
        op.execute(heads.insert().values(seq=head[0], digest=head[1],
                                         sealed_at=idp.db.utcnow(), format=1))
    op.drop_table('audit_chain_head')
    for statement in (POSTGRESQL_CREATE if postgresql else SQLITE_CREATE):
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    if bind.execute(sa.text("SELECT 1 FROM audit_events WHERE seq IS NULL OR format <> 1 "
                            "LIMIT 1")).first():
        raise RuntimeError("audit events were appended or sealed since the upgrade: the "
                           "previous version cannot verify them, so this revision cannot be "
                           "downgraded")
    for statement in (POSTGRESQL_DROP if postgresql else SQLITE_DROP):
        op.execute(statement)
    op.create_table('audit_chain_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('updated_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_chain_head'))
    )
    head = bind.execute(sa.text("SELECT seq, digest FROM audit_heads "
                                "ORDER BY seq DESC LIMIT 1")).first()
    if head is not None:
        table = sa.table('audit_chain_head', sa.column('id', sa.Integer()),
                         sa.column('seq', sa.BigInteger()), sa.column('digest', sa.String()),
                         sa.column('updated_at', idp.db.UTCDateTime(timezone=True)))
        op.execute(table.insert().values(id=1, seq=head[0], digest=head[1],
                                         updated_at=idp.db.utcnow()))
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_unsealed', postgresql_where=UNSEALED,
                            sqlite_where=UNSEALED)
        batch_op.alter_column('digest', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('prev_digest', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column('format')
        batch_op.drop_column('xid')
    op.drop_table('audit_heads')
    for statement in (OLD_POSTGRESQL_CREATE if postgresql else OLD_SQLITE_CREATE):
        op.execute(statement)


# ---- append-only triggers (a frozen copy of idp/audit/guard.py) ---------------

SQLITE_CREATE = [
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (NEW.id IS OLD.id AND NEW.tag IS OLD.tag AND NEW.at IS OLD.at AND NEW.actor IS OLD.actor
  AND NEW.admin_id IS OLD.admin_id AND NEW.client_id IS OLD.client_id
  AND NEW.company_id IS OLD.company_id AND NEW.data IS OLD.data
  AND NEW.personal_digest IS OLD.personal_digest AND NEW.xid IS OLD.xid AND ((
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
    """DROP TRIGGER IF EXISTS audit_events_no_update""",
    """DROP TRIGGER IF EXISTS audit_events_no_delete""",
    """DROP TRIGGER IF EXISTS audit_heads_no_update""",
    """DROP TRIGGER IF EXISTS audit_heads_no_delete""",
]

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
    """DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events""",
    """DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events""",
    """DROP TRIGGER IF EXISTS audit_heads_append_only ON audit_heads""",
    """DROP TRIGGER IF EXISTS audit_heads_no_truncate ON audit_heads""",
    """DROP FUNCTION IF EXISTS audit_events_append_only()""",
    """DROP FUNCTION IF EXISTS audit_heads_append_only()""",
]

# The previous revision's triggers (5926268e5fd0's copy), for the upgrade's DROP and the downgrade.

OLD_SQLITE_CREATE = [
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
OLD_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_delete",
]
OLD_POSTGRESQL_CREATE = [
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
OLD_POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_chain_head_forward ON audit_chain_head",
    "DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_chain_head",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
    "DROP FUNCTION IF EXISTS audit_chain_head_forward()",
]
