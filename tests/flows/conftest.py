"""Fixtures shared by the flow tests beyond the root conftest."""

from tests.test_cli import built_apps  # noqa: F401 - fixture: the `idp` command's apps
from tests.test_cli import cli  # noqa: F401 - fixture: run `idp ARGS...` on the test database
