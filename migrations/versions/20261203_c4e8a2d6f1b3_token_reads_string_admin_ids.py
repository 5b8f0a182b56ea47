"""token reads, string admin ids

Revision ID: c4e8a2d6f1b3
Revises: c8e4f2a7d1b3
Create Date: 2026-12-03 05:45:59.857963

``token_reads``: how often each access token was read (userinfo, resource APIs), in
five-minute buckets, for the monitoring's "one token read far more often than
usual" rule (idp.exchange.token_reads). A new table: nodes of the previous version
never write it. No foreign key to ``tokens``: the counts outlive their tokens for
the monitoring's baseline and are purged by age.

The admin columns of ``company_usage_reports`` and ``monitoring_alerts`` were
integers, but an admin's id is a 16-character string (``admins.id``); both tables
are new in b7d2e9f4c1a6 and hold no rows yet in any deployment, so the type change
is safe.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'c4e8a2d6f1b3'
down_revision = 'c8e4f2a7d1b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('token_reads',
    sa.Column('token_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('bucket', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('company_id', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('token_id', 'bucket', name=op.f('pk_token_reads'))
    )
    with op.batch_alter_table('token_reads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_reads_bucket'), ['bucket'], unique=False)
        batch_op.create_index(batch_op.f('ix_token_reads_company_id'), ['company_id'], unique=False)

    with op.batch_alter_table('company_usage_reports', schema=None) as batch_op:
        batch_op.alter_column('admin_id',
               existing_type=sa.INTEGER(),
               type_=sa.String(length=16),
               existing_nullable=True,
               postgresql_using='admin_id::varchar(16)')

    with op.batch_alter_table('monitoring_alerts', schema=None) as batch_op:
        batch_op.alter_column('acknowledged_by',
               existing_type=sa.INTEGER(),
               type_=sa.String(length=16),
               existing_nullable=True,
               postgresql_using='acknowledged_by::varchar(16)')


def downgrade() -> None:
    with op.batch_alter_table('monitoring_alerts', schema=None) as batch_op:
        batch_op.alter_column('acknowledged_by',
               existing_type=sa.String(length=16),
               type_=sa.INTEGER(),
               existing_nullable=True,
               postgresql_using='acknowledged_by::integer')

    with op.batch_alter_table('company_usage_reports', schema=None) as batch_op:
        batch_op.alter_column('admin_id',
               existing_type=sa.String(length=16),
               type_=sa.INTEGER(),
               existing_nullable=True,
               postgresql_using='admin_id::integer')

    with op.batch_alter_table('token_reads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_reads_company_id'))
        batch_op.drop_index(batch_op.f('ix_token_reads_bucket'))

    op.drop_table('token_reads')
