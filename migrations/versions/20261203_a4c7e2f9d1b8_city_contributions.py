"""city_contributions: the residents of each sealed hour of the city export, frozen

Revision ID: a4c7e2f9d1b8
Revises: 04c2bad80957
Create Date: 2026-12-03 12:00:00.000000

Each granularity used to be sealed on its own, at its first export: exporting a day
hourly, then (after one resident opted out, or changed) daily, gave two releases of one
period whose difference was that resident. Now, when an hour is sealed, what each
resident behind its touches contributed (a keyed pseudonym, counted or not, and their
breakdown values) is frozen with it, and days, weeks and months are computed from those
rows only (docs/city-export.md). A new table only: nodes of the previous version keep
running during a rolling upgrade (they go on sealing coarser buckets the old way until
they are replaced; hours they seal get their contributions at their next use).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'a4c7e2f9d1b8'
down_revision = '04c2bad80957'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('city_contributions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hour_start', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('area', sa.String(length=200), nullable=False),
    sa.Column('person', sa.String(length=32), nullable=False),
    sa.Column('values', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_city_contributions')),
    sa.UniqueConstraint('hour_start', 'area', 'person',
                        name=op.f('uq_city_contributions_hour_start_area_person'))
    )


def downgrade() -> None:
    op.drop_table('city_contributions')
