"""Two versions side by side: the previous release's code on this release's schema.

A roll-out migrates once and then replaces the nodes one at a time (docs/operations.md,
"Upgrading across a migration"), so for a while nodes of the previous release serve
against the schema this release's migrations made. Migrations are therefore
expand-then-contract: this test proves it for the hot paths. The previous release's
``idp`` package (and its own test factories) is exported from git into a directory and
run in a subprocess against a database upgraded to this release's head: discovery, a
client_credentials token, the code flow with consent, userinfo, refresh and
introspection. Then this release reads what the old node wrote: its access token works
at this release's userinfo and introspection, as it must when a load balancer sends
the next request to a new node.

The previous release is the last commit before this release's first migration (the
data exchange, ``b7d2e9f4c1a6``), i.e. the parent of the commit that added it; but one
migration of this release is declared stop-the-world: the audit trail's sealing
(``7c1e5a9d3f20``) removes the chain-head row every earlier release locks on each audited
write, so nodes are stopped for it (docs/operations.md, "Upgrading across a migration").
Rolling upgrades hold again from the first commit of main that has it, and that commit is
the previous release this test runs whenever the history holds it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from idp.extensions import db
from tests.helpers.app import IsolatedClient

ROOT = Path(__file__).resolve().parents[2]
FIRST_NEW_MIGRATION = "migrations/versions/20261203_b7d2e9f4c1a6_data_exchange_categories_contracts_.py"
# The last migration nodes must stop for (see the docstring); none may follow unless declared here.
LAST_STOP_THE_WORLD = "migrations/versions/20261203_7c1e5a9d3f20_audit_sealing.py"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True,  # noqa: S603,S607
                          capture_output=True, text=True).stdout.strip()


def previous_release() -> str | None:
    """The commit before the one that added this release's first migration, or None
    outside a git checkout (a source tarball has no history to compare with)."""
    if shutil.which("git") is None:
        return None
    try:
        stop = _git("log", "--first-parent", "--diff-filter=A", "--format=%H", "-n1", "--",
                    LAST_STOP_THE_WORLD)
        if stop:
            return stop
        added = _git("log", "--diff-filter=A", "--format=%H", "-n1", "--", FIRST_NEW_MIGRATION)
        return _git("rev-parse", f"{added}^") if added else None
    except subprocess.CalledProcessError:
        return None


PREVIOUS = previous_release()
pytestmark = pytest.mark.skipif(PREVIOUS is None,
                                reason="needs the git history to export the previous release")

# Runs inside the previous release's tree, with its own idp package and test factories.
OLD_NODE = r"""
import json
import sys

from idp import create_app
from idp.extensions import db
from tests import factories
from tests.helpers.app import TEST_SETTINGS
from tests.helpers.app import IsolatedClient

app = create_app({**TEST_SETTINGS, "database_url": sys.argv[1], "outbox_dir": sys.argv[2]})
out = {}
with app.app_context():
    app.test_client_class = IsolatedClient
    client = app.test_client()

    discovery = client.get("/.well-known/openid-configuration")
    out["discovery"] = discovery.status_code
    out["jwks"] = client.get("/jwks.json").status_code

    company = factories.company("旧版社")
    machine = factories.rp(company, grant_types=["client_credentials"], scopes=["touch_events"])
    answer = client.post("/token", data={"grant_type": "client_credentials",
                                         "scope": "touch_events"},
                         auth=(machine.client_id, machine.client_secret))
    out["client_credentials"] = answer.status_code

    factories.resident()
    rp = factories.rp(company)
    tokens = factories.tokens(client, rp)
    out["userinfo"] = client.get(
        "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}).status_code
    refreshed = client.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                            auth=(rp.client_id, rp.client_secret))
    out["refresh"] = refreshed.status_code
    access = refreshed.json["access_token"]
    out["introspect_active"] = client.post(
        "/introspect", data={"token": access}, auth=(rp.client_id, rp.client_secret)).json["active"]
    out["rp"] = [rp.client_id, rp.client_secret]
    out["access_token"] = access
    db.engine.dispose()
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def old_tree(tmp_path_factory) -> Path:
    """The previous release's files (git archive of PREVIOUS), extracted once."""
    target = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS,  # noqa: S603,S607
                              "idp", "consent_ui", "config", "migrations", "tests"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def test_previous_release_serves_hot_paths_on_the_new_schema(app, migrated, old_tree, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["PYTHONPATH"] = str(old_tree)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", OLD_NODE, migrated, str(tmp_path / "outbox")],
        cwd=old_tree, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, result.stderr[-4000:]
    old = json.loads(lines[-1].removeprefix("RESULT "))

    assert old["discovery"] == 200
    assert old["jwks"] == 200
    assert old["client_credentials"] == 200
    assert old["userinfo"] == 200
    assert old["refresh"] == 200
    assert old["introspect_active"] is True

    # The next request lands on a node of this release: what the old node issued holds.
    app.test_client_class = IsolatedClient
    client = app.test_client()
    client_id, secret = old["rp"]
    userinfo = client.get("/userinfo", headers={"Authorization": "Bearer " + old["access_token"]})
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json["sub"]
    introspection = client.post("/introspect", data={"token": old["access_token"]},
                                auth=(client_id, secret))
    assert introspection.status_code == 200
    assert introspection.json["active"] is True
    db.session.rollback()


def test_the_exported_release_is_the_one_before_this_releases_migrations(old_tree):
    """The export is the release nodes roll from: it holds the last stop-the-world migration
    (the audit trail's sealing) and none of the migrations after it, so the comparison above
    is with an older schema's code, not with this one."""
    from alembic.script import ScriptDirectory

    assert (old_tree / "idp" / "__init__.py").is_file()
    assert (old_tree / LAST_STOP_THE_WORLD).is_file()
    stop = "7c1e5a9d3f20"
    newer = [s.revision for s in ScriptDirectory(str(ROOT / "migrations")).walk_revisions(
        stop, "heads") if s.revision != stop]
    assert newer, "no migration after the stop-the-world one: nothing left to roll across"
    old_versions = {p.name.split("_")[1] for p in (old_tree / "migrations/versions").glob("*.py")}
    assert not set(newer) & old_versions
