"""outbox messages: deliveries queued with their change, sent after the commit

Revision ID: f3a9c1d7e2b4
Revises: e5b2c8d4a1f7
Create Date: 2026-12-02 21:16:07.016141

Back-channel logout tokens were POSTed from inside the request's transaction;
on SQLite a relying party calling back (``/revoke``) waited on the write lock
until the delivery timed out. ``outbox_messages`` holds each message from the
transaction that caused it until it is delivered (or given up on: ``dead``);
``idp.outbox.service`` delivers with no transaction open. A new table only:
nodes of the previous version keep running during a rolling upgrade (they
never read it; their own deliveries stay in-request until they are replaced).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.db

revision = 'f3a9c1d7e2b4'
down_revision = 'e5b2c8d4a1f7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=500), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('resident_id', sa.String(length=40), nullable=True),
    sa.Column('client_id', sa.String(length=40), nullable=True),
    sa.Column('company_id', sa.String(length=40), nullable=True),
    sa.Column('dedupe_key', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', idp.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', idp.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_messages_dedupe_key'), ['dedupe_key'], unique=False)
        batch_op.create_index('ix_outbox_messages_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_dedupe_key'))

    op.drop_table('outbox_messages')
