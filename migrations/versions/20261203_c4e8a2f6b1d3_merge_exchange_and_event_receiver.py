"""merge: the data exchange's tables and the clients' event receiver

Revision ID: c4e8a2f6b1d3
Revises: a1e5c7b9d2f4, b7d2e9f4c1a6
Create Date: 2026-12-03 06:00:00.000000

Both revisions start from the outbox (f3a9c1d7e2b4) and touch different tables
(``clients.event_receiver_uri``; the ``data_*``, ``registered_records`` and
``collection_stops`` tables), so they join here without a change; ``idp db
upgrade`` needs one head.
"""

from __future__ import annotations

revision = 'c4e8a2f6b1d3'
down_revision = ('a1e5c7b9d2f4', 'b7d2e9f4c1a6')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
