"""record a userinfo claims release once per token

Revision ID: e5b2c8d4a1f7
Revises: d7e3a1c5f902
Create Date: 2026-11-22 16:10:00.000000

``tokens.released_claims`` holds a digest of the claim names last released
through UserInfo with the token. A relying party calling UserInfo on every
request of its user releases the same claims each time; the audit trail (and
the resident's history) records the release when the set changes, not on
every call. A nullable column without a default: adding it rewrites nothing
on PostgreSQL, so nodes of the previous version keep running during a rolling
upgrade (they never read it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'e5b2c8d4a1f7'
down_revision = 'd7e3a1c5f902'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released_claims', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('released_claims')
