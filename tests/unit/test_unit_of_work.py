"""The request's unit of work (idp.extensions.end_unit_of_work): one commit after the view answered
below 400, a rollback otherwise, unless a 4xx view keeps its work (commit_on_error)."""

from __future__ import annotations

import pytest

from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.extensions import commit_on_error
from tests.helpers.admin import events

pytestmark = pytest.mark.own_app  # adds routes to the app



@pytest.fixture
def routes(app):
    """Views that write one audit event, then answer with the status they are asked for."""

    def view(status: int, keep: str = ""):
        record(AuditTag.CLI_REFUSED, actor="test", command=f"uow {status} {keep}")
        if keep:
            commit_on_error()
        if status == 999:
            raise RuntimeError("the view failed")
        return "", status

    app.add_url_rule("/test/uow/<int:status>", view_func=view)
    app.add_url_rule("/test/uow/<int:status>/<keep>", view_func=view)
    return app


def written() -> list[str]:
    return [event.data["command"] for event in events(str(AuditTag.CLI_REFUSED))]


@pytest.mark.parametrize(("path", "status", "kept"), [
    ("/test/uow/200", 200, True),
    ("/test/uow/303", 303, True),
    ("/test/uow/400", 400, False),
    ("/test/uow/401/keep", 401, True),
    ("/test/uow/503/keep", 503, False),
    ("/test/uow/999", 500, False),
])
def test_the_request_commits_once_it_answered_well(routes, client, path, status, kept):
    """Test that a success commits the view's work, an error answer rolls it back, a 4xx
    marked with commit_on_error keeps it, and a 5xx or an exception never does."""
    assert client.get(path).status_code == status
    assert bool(written()) is kept

