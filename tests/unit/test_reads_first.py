"""Which statements begin the transaction of a request that reads first
(``idp.db.reads_first``): anything that writes or locks; plain reads run in autocommit."""

from __future__ import annotations

import pytest

from idp.db import reads_only


@pytest.mark.parametrize("statement", [
    "SELECT tokens.id FROM tokens WHERE tokens.access_token_digest = %(digest)s",
    "  select 1",
    "SELECT (SELECT value FROM revocation_epoch WHERE id = 1) AS epoch",
    "SELECT consents.scopes FROM consents -- FOR the record",
])
def test_plain_reads_run_in_autocommit(statement):
    """Test that a SELECT without a locking clause or a transactional function reads."""
    assert reads_only(statement)


@pytest.mark.parametrize("statement", [
    "INSERT INTO audit_events (tag) VALUES (%(tag)s)",
    "UPDATE tokens SET released_claims = %(h)s WHERE tokens.id = %(id)s",
    "DELETE FROM used_client_assertions WHERE expires_at <= %(now)s",
    "SAVEPOINT sa_savepoint_1",
    "WITH polled AS (SELECT id FROM device_codes FOR UPDATE) UPDATE device_codes SET x = 1",
    "SELECT tokens.id FROM tokens WHERE tokens.family_id = %(f)s ORDER BY tokens.id FOR UPDATE",
    "SELECT id FROM tokens\nFOR NO KEY UPDATE",
    "SELECT id FROM clients FOR SHARE",
    "SELECT id FROM clients FOR KEY SHARE",
    "SELECT pg_notify(%(channel)s, %(payload)s)",
    "SELECT pg_advisory_xact_lock(42)",
    "SELECT nextval('audit_seq')",
    "SELECT set_config('x.y', '1', true)",
])
def test_writes_and_locks_begin_the_transaction(statement):
    """Test that a write, a savepoint, a locking read and a transactional function each
    begin the transaction first."""
    assert not reads_only(statement)
