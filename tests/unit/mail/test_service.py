"""Mail: real SMTP delivery to a local server, TLS rules, and the development outbox."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import socketserver
import threading

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from idp.db import utcnow
from idp.extensions import db
from idp.mail import service as mail
from idp.outbox.models import OutboxMessage
from tests.helpers.accounts import outbox
from tests.helpers.accounts import post_form
from tests.helpers.admin import AdminBrowser
from tests.helpers.admin import enrolled_admin
from tests.helpers.admin import events
from tests.helpers.app import flush_outbox


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough ESMTP (RFC 5321) to receive one message: no STARTTLS, AUTH PLAIN."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self):
        self.reply("220 test ESMTP")
        data: list[bytes] | None = None
        while line := self.rfile.readline():
            if data is not None:
                if line == b".\r\n":
                    self.server.messages.append(b"".join(data))
                    data = None
                    self.reply("250 queued")
                else:
                    data.append(line[1:] if line.startswith(b"..") else line)
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-test\r\n250-8BITMIME\r\n250 AUTH PLAIN\r\n")
            elif verb == b"AUTH":
                self.server.logins.append(base64.b64decode(line.split()[2]).split(b"\0")[1:])
                self.reply("235 accepted")
            elif verb == b"DATA":
                data = []
                self.reply("354 go ahead")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def use(app, **changes) -> None:
    """Point the app at a server started after it was built."""
    app.extensions["idp.settings"] = dataclasses.replace(app.extensions["idp.settings"],
                                                         **changes)


@pytest.fixture
def smtp_server():
    def start(host: str = "127.0.0.1"):
        server = socketserver.ThreadingTCPServer((host, 0), SMTPHandler)
        server.messages, server.logins = [], []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    started: list = []
    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_mail_goes_out_over_smtp(app, smtp_server):
    """Test that with smtp_url a message reaches the server, logged in, with UTF-8 Japanese text."""
    server = smtp_server()
    url = f"smtp://machi%40id:s3cret@127.0.0.1:{server.server_address[1]}"
    use(app, smtp_url=url, mail_from="Machi ID <no-reply@id.example.jp>")
    with app.test_request_context():
        mail.send(mail.Message("hanako@example.jp", "ユーザーIDの本登録", "本文です。\n"))
    (raw,) = server.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"] == "hanako@example.jp"
    assert message["From"] == "Machi ID <no-reply@id.example.jp>"
    assert message["Subject"] == "ユーザーIDの本登録"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content().strip() == "本文です。"
    assert server.logins == [[b"machi@id", b"s3cret"]]
    assert outbox() == []


def test_network_server_without_starttls_is_refused(app, smtp_server):
    """Test that a non-loopback-named server that offers no STARTTLS gets nothing in clear."""
    server = smtp_server("127.0.0.2")
    url = f"smtp://127.0.0.2:{server.server_address[1]}"
    use(app, smtp_url=url)
    with app.test_request_context(), pytest.raises(mail.MailError):
        mail.send(mail.Message("hanako@example.jp", "件名", "本文"))
    assert server.messages == []


@pytest.mark.parametrize("settings_overrides", [{"smtp_url": "smtp://127.0.0.1:1",
                                                 "outbox_max_attempts": 2}])
def test_unreachable_server_is_retried_then_shown_not_hidden(client, settings_overrides):
    """Test that mail to a mail server that cannot be reached is not lost: the request is
    answered (mail goes through the outbox after the commit), the send is retried after
    its backoff, and the last failure is a dead letter on the console's outbox page."""
    with freeze_time(utcnow()) as clock:
        response = post_form(client, "/register", {"email": "taro@example.jp"})
        assert response.status_code == 200
        db.session.rollback()
        (row,) = db.session.scalars(select(OutboxMessage))
        assert (row.kind, row.status, row.attempts) == ("mail", "pending", 1)
        assert row.target == "mail:example.jp"
        assert row.last_error == "the mail server refused or could not be reached"
        clock.tick(31)
        assert flush_outbox()[0]["result"] == "failed"
    db.session.rollback()
    row = db.session.get(OutboxMessage, row.id)
    assert (row.status, row.attempts) == ("dead", 2)
    assert events("mail:delivery")[-1].data["dead"] is True
    admin = AdminBrowser(client.application.test_client(), enrolled_admin())
    admin.login()
    page = admin.client.get("/admin/outbox")
    assert "mail:example.jp" in page.text and "could not be reached" in page.text
    assert "taro@example.jp" not in page.text


def test_outbox_lists_and_shows_messages(client):
    """Test that /dev/outbox lists the mail written in development and shows its links."""
    post_form(client, "/register", {"email": "taro@example.jp"})
    page = client.get("/dev/outbox/")
    assert page.status_code == 200
    assert "taro@example.jp" in page.text
    name = page.text.split('href="/dev/outbox/')[1].split('"')[0]
    message = client.get(f"/dev/outbox/{name}")
    assert "/register/complete?token=" in message.text
    assert '<a href="http://localhost/register/complete?token=' in message.text


@pytest.mark.parametrize("name", ["../secret.eml", "nothing.eml", ".hidden.eml", "x.txt"])
def test_outbox_refuses_other_files(client, name):
    """Test that only .eml files of the outbox can be shown."""
    assert client.get(f"/dev/outbox/{name}").status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"smtp_url": "smtps://mail.example.jp"}])
def test_outbox_does_not_exist_with_a_mail_server(client, settings_overrides):
    """Test that with smtp_url set the outbox pages are 404."""
    assert client.get("/dev/outbox/").status_code == 404


def test_mail_is_written_in_the_residents_language(client):
    """Test that a request made on English pages gets an English mail."""
    client.get("/lang/en")
    post_form(client, "/register", {"email": "taro@example.jp"})
    (message,) = outbox()
    assert message.subject == "Register your consortium ID"
