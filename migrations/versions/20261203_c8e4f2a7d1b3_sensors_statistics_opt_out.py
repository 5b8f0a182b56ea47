"""people-counting sensors, kiosk coordinates and contact, the statistics opt-out

Revision ID: c8e4f2a7d1b3
Revises: a1e5c7b9d2f4
Create Date: 2026-12-03 05:36:04.451946

``sensors`` and ``sensor_counts`` hold the passers-by counts of the city's
people-counting sensors (no identity: one row per sensor, interval start and
direction, which a resend replaces). Kiosks gain optional coordinates and a
contact for the public transparency page; residents gain
``statistics_opt_out_at``, set while they ask to be left out of the city's
statistics. New tables and nullable (or defaulted) columns only: nodes of the
previous version keep running during a rolling upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'c8e4f2a7d1b3'
down_revision = 'a1e5c7b9d2f4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sensors',
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('area', sa.String(length=200), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_sensors_client_id_clients')),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_sensors'))
    )
    op.create_table('sensor_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('interval_start', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('received_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['sensors.client_id'], name=op.f('fk_sensor_counts_client_id_sensors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sensor_counts')),
    sa.UniqueConstraint('client_id', 'interval_start', 'direction', name=op.f('uq_sensor_counts_client_id_interval_start_direction'))
    )
    with op.batch_alter_table('kiosks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('latitude', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('longitude', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('contact', sa.String(length=200), server_default='', nullable=False))

    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('statistics_opt_out_at', idp.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('statistics_opt_out_at')

    with op.batch_alter_table('kiosks', schema=None) as batch_op:
        batch_op.drop_column('contact')
        batch_op.drop_column('longitude')
        batch_op.drop_column('latitude')

    op.drop_table('sensor_counts')
    op.drop_table('sensors')
