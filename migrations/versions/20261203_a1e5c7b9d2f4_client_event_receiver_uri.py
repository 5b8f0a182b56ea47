"""client event receiver URI: where Security Event Tokens are pushed

Revision ID: a1e5c7b9d2f4
Revises: b7d2e9f4c1a6
Create Date: 2026-12-03 05:40:00.000000

A member company registers, per client, the URL that receives signed security
events (RFC 8417 SETs pushed per RFC 8935): a consent withdrawn, a session
revoked, an account deleted (docs/security-events.md). One nullable column, no
default and no backfill: an existing client has no receiver and is sent
nothing, and nodes of the previous version keep running during a rolling
upgrade (they never read the column).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'a1e5c7b9d2f4'
down_revision = 'b7d2e9f4c1a6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_receiver_uri', sa.String(length=500),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('event_receiver_uri')
