"""data exchange: categories, contracts, records, links

Revision ID: b7d2e9f4c1a6
Revises: f3a9c1d7e2b4
Create Date: 2026-12-03 05:28:03.600054

The consortium's data exchange (idp.exchange): categories of registered data,
data-use contracts naming them, the records member companies contribute, consent
per data link, residents' collection stops, companies' own usage reports and the
monitoring's alerts. New tables only: nodes of the previous version keep running
during a rolling upgrade (they never read them). The seed-000 categories are
created by ``idp db upgrade`` after the migration (idp.exchange.categories.DEFAULTS),
not here, so the list lives in one place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'b7d2e9f4c1a6'
down_revision = 'f3a9c1d7e2b4'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('data_categories',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('label_ja', sa.String(length=100), nullable=False),
    sa.Column('label_en', sa.String(length=100), nullable=False),
    sa.Column('value_schema', sa.JSON(), nullable=False),
    sa.Column('sensitivity', sa.String(length=16), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('statistics', sa.Boolean(), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('retired_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_data_categories'))
    )
    op.create_table('monitoring_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('company_id', sa.String(length=16), nullable=True),
    sa.Column('client_id', sa.String(length=40), nullable=True),
    sa.Column('window_start', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('detected_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monitoring_alerts'))
    )
    with op.batch_alter_table('monitoring_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monitoring_alerts_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_monitoring_alerts_rule'), ['rule'], unique=False)

    op.create_table('collection_stops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.String(length=16), nullable=False),
    sa.Column('company_id', sa.String(length=16), nullable=False),
    sa.Column('stopped_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_collection_stops_company_id_companies')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_collection_stops_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_stops')),
    sa.UniqueConstraint('resident_id', 'company_id', name=op.f('uq_collection_stops_resident_id_company_id'))
    )
    with op.batch_alter_table('collection_stops', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_stops_company_id'), ['company_id'], unique=False)

    op.create_table('data_contracts',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('company_id', sa.String(length=16), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('liability', sa.Text(), nullable=False),
    sa.Column('audit_rights', sa.Text(), nullable=False),
    sa.Column('breach_contact', sa.String(length=200), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_data_contracts_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_contracts'))
    )
    with op.batch_alter_table('data_contracts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_contracts_company_id'), ['company_id'], unique=False)

    op.create_table('company_usage_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.String(length=16), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_company_usage_reports_company_id_companies')),
    sa.ForeignKeyConstraint(['contract_id'], ['data_contracts.id'], name=op.f('fk_company_usage_reports_contract_id_data_contracts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company_usage_reports'))
    )
    with op.batch_alter_table('company_usage_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_company_usage_reports_company_id'), ['company_id'], unique=False)

    op.create_table('data_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('source_company_id', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('granted_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['category'], ['data_categories.key'], name=op.f('fk_data_links_category_data_categories')),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_data_links_client_id_clients')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_data_links_resident_id_residents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_company_id'], ['companies.id'], name=op.f('fk_data_links_source_company_id_companies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_links')),
    sa.UniqueConstraint('resident_id', 'client_id', 'source_company_id', 'category', name=op.f('uq_data_links_resident_id_client_id_source_company_id_category'))
    )
    with op.batch_alter_table('data_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_links_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_links_resident_id'), ['resident_id'], unique=False)

    op.create_table('registered_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.String(length=16), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('company_id', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('contract_id', sa.String(length=16), nullable=False),
    sa.Column('record_id', sa.String(length=100), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('collected_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disputed_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dispute_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['category'], ['data_categories.key'], name=op.f('fk_registered_records_category_data_categories')),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_registered_records_company_id_companies')),
    sa.ForeignKeyConstraint(['contract_id'], ['data_contracts.id'], name=op.f('fk_registered_records_contract_id_data_contracts')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_registered_records_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registered_records')),
    sa.UniqueConstraint('company_id', 'record_id', name=op.f('uq_registered_records_company_id_record_id'))
    )
    with op.batch_alter_table('registered_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registered_records_company_id'), ['company_id'], unique=False)
        batch_op.create_index('ix_registered_records_resident_id_category', ['resident_id', 'category'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('registered_records', schema=None) as batch_op:
        batch_op.drop_index('ix_registered_records_resident_id_category')
        batch_op.drop_index(batch_op.f('ix_registered_records_company_id'))

    op.drop_table('registered_records')
    with op.batch_alter_table('data_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_links_resident_id'))
        batch_op.drop_index(batch_op.f('ix_data_links_client_id'))

    op.drop_table('data_links')
    with op.batch_alter_table('company_usage_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_company_usage_reports_company_id'))

    op.drop_table('company_usage_reports')
    with op.batch_alter_table('data_contracts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_contracts_company_id'))

    op.drop_table('data_contracts')
    with op.batch_alter_table('collection_stops', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_stops_company_id'))

    op.drop_table('collection_stops')
    with op.batch_alter_table('monitoring_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monitoring_alerts_rule'))
        batch_op.drop_index(batch_op.f('ix_monitoring_alerts_company_id'))

    op.drop_table('monitoring_alerts')
    op.drop_table('data_categories')
