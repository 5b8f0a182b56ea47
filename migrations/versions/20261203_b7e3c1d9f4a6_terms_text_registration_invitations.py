"""terms text, registration invitations

Revision ID: b7e3c1d9f4a6
Revises: d5b1f7c3a9e2
Create Date: 2026-12-03 08:27:33

``terms_versions`` gains the full text of each version (``text``, ``text_en``),
so what a resident agreed to can be shown again as it was; rows published
before are empty and show the text bundled with the product.
``registration_invitations`` keeps the digest of each mailed registration
token with its address, so the link no longer carries the address. Added
columns have a server default and the table is new: nodes of the previous
version keep running during a rolling upgrade (their links, signed tokens,
are refused by the new version with a page that asks for a new link).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'b7e3c1d9f4a6'
down_revision = 'd5b1f7c3a9e2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('registration_invitations',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('interaction', sa.String(length=100), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_registration_invitations'))
    )
    with op.batch_alter_table('registration_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_invitations_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('terms_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('text', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('text_en', sa.Text(), server_default='', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('terms_versions', schema=None) as batch_op:
        batch_op.drop_column('text_en')
        batch_op.drop_column('text')

    with op.batch_alter_table('registration_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_invitations_expires_at'))

    op.drop_table('registration_invitations')
