"""seal signing keys at rest

Revision ID: d7e3a1c5f902
Revises: c4f1e2a9b7d3
Create Date: 2026-11-22 14:30:00.000000

Private signing keys move from a clear JSON column to a Fernet-sealed text
column (idp.keys.crypto). Existing keys are sealed in place with the
key-encryption key of the settings this migration runs with
(IDP_KEY_ENCRYPTION_KEY, or the development derivation from the secret key),
so run it with the same settings as the servers. Downgrade unseals them.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from idp.config import Settings
from idp.keys.crypto import kek_from

revision = "d7e3a1c5f902"
down_revision = "c4f1e2a9b7d3"
branch_labels = None
depends_on = None

keys = sa.table("signing_keys", sa.column("kid", sa.String), sa.column("private_jwk", sa.JSON),
                sa.column("private_jwk_sealed", sa.Text))


def _fernet():
    settings = Settings.load()
    return kek_from(settings.key_encryption_key, settings.secret_key)


def upgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private_jwk_sealed", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(keys.c.kid, keys.c.private_jwk)).all()
    if rows:
        fernet = _fernet()
        for kid, jwk in rows:
            sealed = fernet.encrypt(json.dumps(jwk).encode()).decode()
            bind.execute(keys.update().where(keys.c.kid == kid)
                         .values(private_jwk_sealed=sealed))
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.alter_column("private_jwk_sealed", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("private_jwk")


def downgrade() -> None:
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private_jwk", sa.JSON(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(keys.c.kid, keys.c.private_jwk_sealed)).all()
    if rows:
        fernet = _fernet()
        for kid, sealed in rows:
            bind.execute(keys.update().where(keys.c.kid == kid)
                         .values(private_jwk=json.loads(fernet.decrypt(sealed.encode()))))
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.alter_column("private_jwk", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("private_jwk_sealed")
