"""revocation epoch: one row every cut-off of cached client, company or key state changes

Revision ID: f3a9c1e7b5d2
Revises: 7c1e5a9d3f20
Create Date: 2026-12-03 08:30:00

Nodes keep clients, companies and keys in process and compare this row's value
on every request that relies on them (idp.access.epoch). A new table only:
nodes of the previous version keep running during a rolling upgrade (they read
clients from the database and never look at it). The row is created by the
first bump; until then every node reads "no epoch" and agrees.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'f3a9c1e7b5d2'
down_revision = '7c1e5a9d3f20'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revocation_epoch',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revocation_epoch'))
    )


def downgrade() -> None:
    op.drop_table('revocation_epoch')
