"""Apache httpd with mod_auth_openidc (Debian's packages) as a relying party nobody here wrote.

The IdP is served on a loopback port (tests.helpers.live); Apache runs as this test's own
foreground process (``apache2 -X -f <tmp>/httpd.conf``, never the system service)
with mod_auth_openidc on its defaults: ``OIDCScope "openid profile email"``,
client_secret_basic, a server-side session cache. A ``requests`` session plays the
resident's browser: it follows the redirects and submits our login and consent forms
with their CSRF tokens. The protected page is an SSI page echoing the claims that
mod_auth_openidc passes on.

Runs on SQLite and on PostgreSQL (``IDP_TEST_DATABASE_URL``), like the rest of the suite.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from urllib.parse import urljoin
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.audit.tags import AuditTag
from idp.clients import service as clients
from idp.extensions import db
from tests import factories
from tests.factories import csrf
from tests.helpers.live import serve

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")

pytestmark = pytest.mark.skipif(
    not (os.access(APACHE, os.X_OK) and (MODULES / "mod_auth_openidc.so").exists()),
    reason="Apache httpd or mod_auth_openidc is missing "
           "(apt-get install -y apache2 libapache2-mod-auth-openidc; .ci/run does)")

PROTECTED_PAGE = """<!DOCTYPE html>
<title>protected</title>
<p>sub=<!--#echo encoding="none" var="OIDC_CLAIM_sub" -->
<p>email=<!--#echo encoding="none" var="OIDC_CLAIM_email" -->
<p>birthdate=<!--#echo encoding="none" var="OIDC_CLAIM_birthdate" -->
<p>gender=<!--#echo encoding="none" var="OIDC_CLAIM_gender" -->
"""

CONFIG = """ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LogLevel warn auth_openidc:debug
DefaultRuntimeDir "{root}/run"
{user}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule include_module {modules}/mod_include.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so

DocumentRoot "{root}/htdocs"
<Directory "{root}/htdocs">
    Require all granted
    Options +Includes
</Directory>
TypesConfig /dev/null
AddType text/html .shtml .html
AddOutputFilter INCLUDES .shtml

OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration
OIDCClientID {client_id}
OIDCClientSecret {client_secret}
OIDCRedirectURI {rp}/protected/redirect_uri
OIDCCryptoPassphrase {passphrase}
OIDCScope "openid profile email"

<Location /protected>
    AuthType openid-connect
    Require valid-user
</Location>
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Apache:
    url: str
    root: Path
    process: subprocess.Popen

    def log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def apache(issuer: str, client_id: str, client_secret: str, port: int) -> Iterator[Apache]:
    """Apache with mod_auth_openidc for this client, as a foreground process of its own."""
    # Not pytest's tmp_path: as root, Apache serves files as www-data, which must
    # be able to reach them (pytest's temporary directories are private).
    root = Path(tempfile.mkdtemp(prefix="machi-apache-", dir="/tmp"))
    try:
        for sub in ("htdocs/protected", "run"):
            (root / sub).mkdir(parents=True)
        (root / "htdocs/protected/index.shtml").write_text(PROTECTED_PAGE)
        (root / "htdocs/loggedout.html").write_text("<!DOCTYPE html><p>signed out\n")
        for path in (root, *root.rglob("*")):
            path.chmod(0o777 if path.is_dir() else 0o644)
        user = "User www-data\nGroup www-data" if os.geteuid() == 0 else ""
        rp = f"http://127.0.0.1:{port}"
        (root / "httpd.conf").write_text(CONFIG.format(
            root=root, port=port, user=user, modules=MODULES, issuer=issuer, rp=rp,
            client_id=client_id, client_secret=client_secret,
            passphrase=secrets.token_urlsafe(24)))
        # Without proxy variables: every URL here is on the loopback interface.
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        process = subprocess.Popen([APACHE, "-X", "-f", str(root / "httpd.conf")], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server = Apache(rp, root, process)
        try:
            wait_until_listening(port, process, server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def wait_until_listening(port: int, process: subprocess.Popen, server: Apache) -> None:
    for _ in range(200):
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.fail(f"apache2 exited ({process.returncode}): {stderr}\n{server.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)  # a short pause that also notices an exit
    pytest.fail(f"apache2 did not start listening\n{server.log()}")



def hidden_fields(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)


class ResidentBrowser:
    """A requests session that follows redirects one at a time, as a browser would."""

    def __init__(self):
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Accept"] = "text/html"

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=30)

    def post(self, url: str, data) -> requests.Response:
        return self.session.post(url, data=data, allow_redirects=False, timeout=30)

    def follow(self, response: requests.Response, stop=lambda r: False) -> requests.Response:
        """Follow redirects until a page (or until ``stop``)."""
        for _ in range(20):
            if response.status_code not in (301, 302, 303, 307) or stop(response):
                return response
            response = self.get(urljoin(response.url, response.headers["Location"]))
        raise AssertionError("too many redirects")


def on(base: str, path: str):
    """A stop condition: the response is for ``base`` + ``path``."""
    return lambda r: r.url.startswith(base + path)


def sign_in(browser: ResidentBrowser, rp: str, idp: str) -> requests.Response:
    """Open the protected page, sign in and consent at the IdP; return the page."""
    response = browser.follow(browser.get(rp + "/protected/index.shtml"), on(idp, "/login"))
    assert urlsplit(response.url).path == "/login", (response.status_code, response.url)
    interaction = re.search(r'name="interaction" value="([^"]+)"', response.text).group(1)
    response = browser.post(idp + "/login", {
        "email": "hanako@example.jp", "password": factories.PASSWORD,
        "interaction": interaction, "csrf_token": csrf(response.text)})
    response = browser.follow(response, on(idp, "/consent/"))
    assert urlsplit(response.url).path.startswith("/consent/"), response.url
    items = re.findall(r'class="item-check" type="checkbox" id="[^"]*" (?:name="scope" )?'
                       r'value="([^"]+)"', response.text)
    # The default "openid profile email", item by item; the resident unticks gender.
    assert items == ["openid", "name", "birth_year", "gender", "email"]
    response = browser.post(response.url, [
        ("csrf_token", csrf(response.text)), ("decision", "allow"),
        *[("scope", s) for s in items if s != "gender"]])
    return browser.follow(response)


def backchannel_outcomes(client_id: str) -> list[dict]:
    db.session.rollback()
    rows = db.session.scalars(select(AuditEvent).where(
        AuditEvent.tag == AuditTag.BACKCHANNEL_LOGOUT.value,
        AuditEvent.client_id == client_id).order_by(AuditEvent.id))
    return [dict(row.data) for row in rows]


@pytest.fixture
def rp_and_idp(app, migrated):
    """The IdP on a free port, a resident, a confidential client for Apache, and Apache."""
    factories.resident()
    port = free_port()
    rp = f"http://127.0.0.1:{port}"
    company = factories.company()
    client, secret = clients.register_client(
        company, "Apache RP", redirect_uris=[rp + "/protected/redirect_uri"],
        post_logout_redirect_uris=[rp + "/loggedout.html"],
        grant_types=["authorization_code"], scopes=factories.ALL_SCOPES,
        purpose="mod_auth_openidc", backchannel_logout_uri=rp + "/protected/redirect_uri"
        "?logout=backchannel")
    client_id = client.id
    db.session.commit()
    db.session.rollback()  # end the test's transaction: SQLite would hold its lock
    with serve(migrated) as idp, apache(idp, client_id, secret, port) as server:
        yield server, idp, client_id


def test_sign_in_with_default_scope_and_rp_initiated_logout(rp_and_idp):
    """Test that mod_auth_openidc with "openid profile email" signs a resident in and shows
    the consented claims, and that its logout URL ends both sessions via end_session."""
    server, idp, _ = rp_and_idp
    browser = ResidentBrowser()
    try:
        page = sign_in(browser, server.url, idp)
    except Exception:
        print(server.log()[-6000:])
        raise
    assert page.status_code == 200, (page.status_code, page.url, server.log())
    assert page.url == server.url + "/protected/index.shtml"
    assert "email=hanako@example.jp" in page.text
    assert "birthdate=1990" in page.text
    assert "gender=(none)" in page.text  # unticked, so not released (SSI: "(none)")
    assert re.search(r"sub=[A-Za-z0-9_-]{20,}", page.text)

    logout = (server.url + "/protected/redirect_uri?logout="
              + quote(server.url + "/loggedout.html", safe=""))
    response = browser.follow(browser.get(logout), on(idp, "/logout"))
    assert urlsplit(response.url).path == "/logout"
    assert "id_token_hint=" in response.url
    response = browser.follow(response)
    if response.status_code == 200 and response.url.startswith(idp):
        # A confirmation page (OIDC RP-Initiated Logout §2): confirm it.
        response = browser.follow(browser.post(idp + "/logout", [
            *hidden_fields(response.text), ("csrf_token", csrf(response.text))]))
    assert response.status_code == 200
    assert urlsplit(response.url)[:3] == urlsplit(server.url + "/loggedout.html")[:3]
    assert "signed out" in response.text

    # Both sessions are gone: Apache sends the browser back to the IdP, which asks to sign in.
    again = browser.get(server.url + "/protected/index.shtml")
    assert again.status_code == 302
    assert again.headers["Location"].startswith(idp + "/authorize?")
    assert urlsplit(browser.follow(again).url).path == "/login"


def test_back_channel_logout_ends_the_apache_session(rp_and_idp):
    """Test that when the resident signs out at the IdP, mod_auth_openidc receives the
    logout token and its session is gone."""
    server, idp, client_id = rp_and_idp
    browser = ResidentBrowser()
    assert sign_in(browser, server.url, idp).status_code == 200
    assert browser.get(server.url + "/protected/index.shtml").status_code == 200

    # The resident signs out on the IdP's own page (no id_token_hint: a confirmation form).
    page = browser.get(idp + "/logout")
    assert page.status_code == 200
    response = browser.post(idp + "/logout", [*hidden_fields(page.text),
                                              ("csrf_token", csrf(page.text))])
    assert response.status_code == 200, response.text

    # The Apache session is gone: the page sends the browser back to the IdP.
    again = browser.get(server.url + "/protected/index.shtml")
    assert again.status_code == 302, server.log()
    assert again.headers["Location"].startswith(idp + "/authorize?")
    # And the IdP recorded the delivery as such (mod_auth_openidc answered 200).
    assert backchannel_outcomes(client_id) == [
        {"reason": "logout", "session": True, "result": "delivered", "status": 200}]
