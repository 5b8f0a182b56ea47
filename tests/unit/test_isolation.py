"""The test harness's isolation (tests/conftest.py): each test in a transaction rolled back
at its end, while the test and the app's requests commit as they do in production."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy import text

from idp.clients.models import Company
from idp.extensions import db
from tests import factories
from tests.helpers.app import count

PROBE = "分離テスト社"

# The probe pair must run in order, on one worker.
pytestmark = pytest.mark.xdist_group("isolation-probe")


def names() -> list[str]:
    return list(db.session.scalars(select(Company.name).order_by(Company.name)))


def test_a_commit_in_a_test_leaves_a_row_for_the_next_test_to_miss(app):
    """Test that a committed row is seen in the test (the commit released a SAVEPOINT)."""
    factories.company(PROBE)
    db.session.commit()
    db.session.rollback()
    assert names() == [PROBE]


def test_the_next_test_starts_from_empty_tables(app):
    """Test that the previous test's committed row is gone: the outer transaction rolled back."""
    assert count(Company) == 0


def test_rollback_after_commit_keeps_what_was_committed(app):
    """Test that a rollback after a commit goes back to the commit, not to the test's start."""
    factories.company("A社")  # commits
    db.session.add(Company(name="B社"))
    db.session.flush()
    db.session.rollback()
    assert names() == ["A社"]
    db.session.add(Company(name="C社"))
    db.session.commit()
    assert names() == ["A社", "C社"]


def test_a_request_sees_the_test_commits_and_the_test_sees_the_request_commits(app, client):
    """Test that a request (its own session, committing inside) and the test share the data."""
    machine = factories.rp(grant_types=["client_credentials"], scopes=["touch_events"])
    # The token request reads the committed client and commits the token inside the request.
    response = client.post("/token", data={"grant_type": "client_credentials",
                                           "scope": "touch_events"},
                           auth=(machine.client_id, machine.client_secret))
    assert response.status_code == 200, response.text
    assert db.session.scalar(text("SELECT count(*) FROM tokens")) == 1


def test_the_session_is_on_one_connection_and_savepoints(app):
    """Test that db.session joins the test's outer transaction with a SAVEPOINT per commit."""
    session = db.session()
    assert session.join_transaction_mode == "create_savepoint"
    connection = session.connection()
    assert connection.in_transaction() and connection.in_nested_transaction()
    db.session.commit()
    assert connection.in_transaction() and not connection.in_nested_transaction()


def test_a_unit_of_work_block_commits_into_the_test_transaction(app):
    """Test that `with session.begin():` (a unit of work per request) ends in a SAVEPOINT too."""
    db.session.rollback()
    with db.session.begin():
        db.session.add(Company(name="D社"))
    assert names() == ["D社"]
    db.session.rollback()  # the read above began a transaction
    with pytest.raises(RuntimeError), db.session.begin():
        db.session.add(Company(name="E社"))
        raise RuntimeError("the unit of work fails")
    assert names() == ["D社"]
