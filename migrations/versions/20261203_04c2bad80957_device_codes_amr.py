"""device_codes.amr: how the approving resident signed in

Revision ID: 04c2bad80957
Revises: b7d3e9f1c2a4
Create Date: 2026-12-03 11:45:00.000000

The device flow's ID token carries ``amr`` (RFC 8176) and, after a passkey,
``acr``, as the code flow's does; the approval copies the browser session's
methods onto the device code. A nullable column only: nodes of the previous
version keep running during a rolling upgrade, and a code they approve has no
value here, so its ID token carries no ``amr`` rather than a guess.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '04c2bad80957'
down_revision = 'b7d3e9f1c2a4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amr', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('device_codes', schema=None) as batch_op:
        batch_op.drop_column('amr')
