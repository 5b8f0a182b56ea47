"""the sealed buckets of the city export

Revision ID: eaa2a8561568
Revises: c4e8a2d6f1b3
Create Date: 2026-12-03 06:09:20.026309

``city_seals`` keeps, per granularity and closed time bucket, the counts the city
export computed the first time it covered that bucket (counts only, no identifier).
Later exports publish from these counts, so two exports of one bucket never differ by
a resident who opted out, a record that expired or a touch posted late: the
differencing attack docs/city-export.md describes. A new table only: nodes of the
previous version keep running during a rolling upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'eaa2a8561568'
down_revision = 'c4e8a2d6f1b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('city_seals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('granularity', sa.String(length=8), nullable=False),
    sa.Column('bucket_start', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('method', sa.Integer(), nullable=False),
    sa.Column('sealed_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_city_seals')),
    sa.UniqueConstraint('granularity', 'bucket_start', name=op.f('uq_city_seals_granularity_bucket_start'))
    )


def downgrade() -> None:
    op.drop_table('city_seals')
