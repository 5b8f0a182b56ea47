"""touch events name their kiosk's client without a foreign key to clients

Revision ID: d2f8a6c4e1b7
Revises: b7e3d1f9a2c5
Create Date: 2026-12-04 15:40:00.000000

``touch_events`` is an append-only log, as ``audit_events`` is: its ``client_id`` is copied
from the kiosk's verified token (whose own ``client_id`` is a foreign key), and clients are
never deleted (they are suspended or revoked). The foreign key checked every touch anew: a
row-level trigger per touch, each taking a KEY SHARE lock on the kiosk client's row, so every
batch of every kiosk of a client locked one shared row (a MultiXact as soon as two batches
overlap) and spent a fifth of PostgreSQL's time on the batch (docs/performance.md). Dropping
a foreign key needs no scan and no rewrite on PostgreSQL; the downgrade adds it back NOT
VALID and validates it afterwards, so kiosks keep logging while it is checked.
"""

from __future__ import annotations

from alembic import op

revision = 'd2f8a6c4e1b7'
down_revision = 'b7e3d1f9a2c5'
branch_labels = None
depends_on = None

NAME = 'fk_touch_events_client_id_clients'


def upgrade() -> None:
    with op.batch_alter_table('touch_events', schema=None) as batch_op:
        batch_op.drop_constraint(NAME, type_='foreignkey')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE touch_events ADD CONSTRAINT {NAME} FOREIGN KEY (client_id) '
                   'REFERENCES clients (id) NOT VALID')
        op.execute(f'ALTER TABLE touch_events VALIDATE CONSTRAINT {NAME}')
        return
    with op.batch_alter_table('touch_events', schema=None) as batch_op:
        batch_op.create_foreign_key(NAME, 'clients', ['client_id'], ['id'])
