"""index only the touch events that have a resident

Revision ID: b7e3d1f9a2c5
Revises: a4c7e2f9d1b8
Create Date: 2026-12-04 12:30:00.000000

Most touches are passers-by's: a kiosk logs them under a client-credentials token,
without a resident. The index on ``touch_events.resident_id`` held every one of them
under NULL, an entry per anonymous touch that no query reads (docs/performance.md
measures what it costs a batch). Every query by resident
(``resident_id = :id``: a resident's export, a kiosk session's last touch, the
``ON DELETE SET NULL`` of an erasure) implies ``resident_id IS NOT NULL``, so a partial
index serves them all. On PostgreSQL the new index is built CONCURRENTLY before the old
one is dropped, outside the migration's transaction, so kiosks keep logging during a
rolling upgrade (docs/deploy.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'b7e3d1f9a2c5'
down_revision = 'a4c7e2f9d1b8'
branch_labels = None
depends_on = None

OLD = 'ix_touch_events_resident_id'
NEW = 'ix_touch_events_resident_id_present'
PRESENT = sa.text('resident_id IS NOT NULL')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(NEW, 'touch_events', ['resident_id'], unique=False,
                            postgresql_where=PRESENT, postgresql_concurrently=True,
                            if_not_exists=True)
            op.drop_index(OLD, table_name='touch_events', postgresql_concurrently=True,
                          if_exists=True)
        return
    with op.batch_alter_table('touch_events', schema=None) as batch_op:
        batch_op.create_index(NEW, ['resident_id'], unique=False, sqlite_where=PRESENT)
        batch_op.drop_index(OLD)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(OLD, 'touch_events', ['resident_id'], unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
            op.drop_index(NEW, table_name='touch_events', postgresql_concurrently=True,
                          if_exists=True)
        return
    with op.batch_alter_table('touch_events', schema=None) as batch_op:
        batch_op.create_index(OLD, ['resident_id'], unique=False)
        batch_op.drop_index(NEW)
