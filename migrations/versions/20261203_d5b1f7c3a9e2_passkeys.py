"""passkeys: residents' and admins' WebAuthn credentials, single-use challenges

Revision ID: d5b1f7c3a9e2
Revises: eaa2a8561568
Create Date: 2026-12-03 06:45:00

``passkeys`` holds each resident's WebAuthn credentials (public key, signature
counter, backup flags, name, last use), ``admin_passkeys`` the admins';
``passkey_challenges`` the challenges
handed to browsers, consumed once and purged when expired. New tables only:
nodes of the previous version keep running during a rolling upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'd5b1f7c3a9e2'
down_revision = 'eaa2a8561568'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('passkey_challenges',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('purpose', sa.String(length=24), nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=True),
    sa.Column('challenge', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkey_challenges'))
    )
    op.create_index(op.f('ix_passkey_challenges_expires_at'), 'passkey_challenges',
                    ['expires_at'], unique=False)
    op.create_table('passkeys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.String(length=16), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.Integer(), nullable=False),
    sa.Column('aaguid', sa.String(length=36), nullable=False),
    sa.Column('transports', sa.JSON(), nullable=False),
    sa.Column('multi_device', sa.Boolean(), nullable=False),
    sa.Column('backed_up', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'],
                            name=op.f('fk_passkeys_resident_id_residents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id'))
    )
    op.create_index(op.f('ix_passkeys_resident_id'), 'passkeys', ['resident_id'], unique=False)
    op.create_table('admin_passkeys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('admin_id', sa.String(length=16), nullable=False),
    sa.Column('credential_id', sa.String(length=1400), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.Integer(), nullable=False),
    sa.Column('aaguid', sa.String(length=36), nullable=False),
    sa.Column('transports', sa.JSON(), nullable=False),
    sa.Column('multi_device', sa.Boolean(), nullable=False),
    sa.Column('backed_up', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'],
                            name=op.f('fk_admin_passkeys_admin_id_admins'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_passkeys')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_admin_passkeys_credential_id'))
    )
    op.create_index(op.f('ix_admin_passkeys_admin_id'), 'admin_passkeys', ['admin_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_admin_passkeys_admin_id'), table_name='admin_passkeys')
    op.drop_table('admin_passkeys')
    op.drop_index(op.f('ix_passkeys_resident_id'), table_name='passkeys')
    op.drop_table('passkeys')
    op.drop_index(op.f('ix_passkey_challenges_expires_at'), table_name='passkey_challenges')
    op.drop_table('passkey_challenges')
