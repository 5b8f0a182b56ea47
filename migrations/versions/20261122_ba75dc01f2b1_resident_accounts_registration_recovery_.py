"""resident accounts: registration, recovery, totp, terms versions, consent receipts

Revision ID: ba75dc01f2b1
Revises: a123a3269cde
Create Date: 2026-11-22 12:49:55.356104

Operational notes:
- Existing residents get ``terms_version`` NULL: nobody accepted terms through
  Machi ID before this release, so each is asked at their next sign-in (and
  before any authorization continues). Nothing is released meanwhile.
- Existing browser sessions get ``amr = ["pwd"]`` from the server default: they
  were all password sign-ins.
- All new columns are nullable or defaulted, and the new tables start empty, so
  the upgrade takes no long locks on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'ba75dc01f2b1'
down_revision = 'a123a3269cde'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('terms_versions',
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('summary_en', sa.Text(), nullable=False),
    sa.Column('effective_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_terms_versions'))
    )
    with op.batch_alter_table('terms_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_terms_versions_effective_at'), ['effective_at'], unique=False)

    op.create_table('used_links',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('used_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_used_links'))
    )
    with op.batch_alter_table('used_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_links_expires_at'), ['expires_at'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.String(length=16), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_recovery_codes_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
    sa.UniqueConstraint('code_digest', name=op.f('uq_recovery_codes_code_digest'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_resident_id'), ['resident_id'], unique=False)

    op.create_table('consent_receipts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('resident_id', sa.String(length=16), nullable=False),
    sa.Column('client_id', sa.String(length=40), nullable=False),
    sa.Column('event', sa.String(length=16), nullable=False),
    sa.Column('issued_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], name=op.f('fk_consent_receipts_client_id_clients')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_consent_receipts_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_receipts'))
    )
    with op.batch_alter_table('consent_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_receipts_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_receipts_resident_id'), ['resident_id'], unique=False)

    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amr', sa.JSON(), server_default=sa.text('\'["pwd"]\''), nullable=False))

    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('terms_version', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('terms_accepted_at', idp.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', idp.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_last_counter', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('totp_last_counter')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('terms_accepted_at')
        batch_op.drop_column('terms_version')
        batch_op.drop_column('locale')
        batch_op.drop_column('pending_email')

    with op.batch_alter_table('browser_sessions', schema=None) as batch_op:
        batch_op.drop_column('amr')

    with op.batch_alter_table('consent_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_receipts_resident_id'))
        batch_op.drop_index(batch_op.f('ix_consent_receipts_client_id'))

    op.drop_table('consent_receipts')
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_resident_id'))

    op.drop_table('recovery_codes')
    with op.batch_alter_table('used_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_links_expires_at'))

    op.drop_table('used_links')
    with op.batch_alter_table('terms_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_terms_versions_effective_at'))

    op.drop_table('terms_versions')
