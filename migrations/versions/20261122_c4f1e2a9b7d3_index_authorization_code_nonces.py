"""index authorization code nonces per client

Revision ID: c4f1e2a9b7d3
Revises: 5926268e5fd0
Create Date: 2026-11-22 14:05:00.000000

Every authorization request asks whether its nonce was used by the client
before (OIDC Core §3.1.2.1 replay protection). Without an index on
(client_id, nonce) that question reads every code the client was ever issued,
so /authorize slows down as a client's history grows (codes are never purged
in this release). On PostgreSQL the index is built CONCURRENTLY, outside the
migration's transaction, so codes keep being issued and redeemed while it is
built during a rolling upgrade (docs/deploy.md).
"""

from __future__ import annotations

from alembic import op

revision = 'c4f1e2a9b7d3'
down_revision = '5926268e5fd0'
branch_labels = None
depends_on = None


INDEX = 'ix_authorization_codes_client_id_nonce'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(INDEX, 'authorization_codes', ['client_id', 'nonce'], unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
        return
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(INDEX, ['client_id', 'nonce'], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name='authorization_codes',
                          postgresql_concurrently=True, if_exists=True)
        return
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(INDEX)
