"""clients.client_uri: the service's home page

Revision ID: b7d3e9f1c2a4
Revises: f3a9c1e7b5d2
Create Date: 2026-12-03 08:50:00.000000

RFC 7591 §2 ``client_uri``: where a resident who returns to a sign-in that is
already finished (the browser's back button after consent) is sent back to.
A nullable column only: nodes of the previous version keep running during a
rolling upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'b7d3e9f1c2a4'
down_revision = 'f3a9c1e7b5d2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_uri', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('client_uri')
