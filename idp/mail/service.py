"""Compose and send mail to residents.

Services build a ``Message`` (rendered from ``consent_ui/templates/mail/`` in
the resident's language) and views ``queue`` it in the request's transaction:
the outbox (``idp.outbox``) sends it **after** the commit, so a mail never
announces a change that was rolled back and no request waits on the mail
server; a failed send is retried with backoff and ends as a dead letter on
the console's outbox page. The row keeps the address and the text only until
the message is delivered (``idp.outbox`` empties the payload then; its
target names the recipient's domain, not the address). With ``smtp_url`` set, mail
goes out over SMTP (STARTTLS, or implicit TLS for ``smtps://``); without it,
development and test write each message to ``outbox_dir`` as an ``.eml`` file
that ``/dev/outbox`` lists. Production refuses to start without ``smtp_url``
(``idp.config``), so no mail is ever silently dropped.
"""

from __future__ import annotations

import email.policy
import email.utils
import itertools
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import Flask
from flask import render_template
from flask_babel import force_locale

from idp import config
from idp import secrets
from idp.audit.tags import AuditTag
from idp.config import ROOT
from idp.config import Settings
from idp.db import utcnow
from idp.locales import DEFAULT
from idp.locales import LOCALES
from idp.outbox import service as outbox_queue

log = logging.getLogger(__name__)
SMTP_TIMEOUT = 20
KIND = "mail"
_sequence = itertools.count()  # orders outbox files written within one microsecond


class MailError(RuntimeError):
    """The message could not be handed to the mail server."""


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str


def compose(template: str, to: str, locale: str | None, **context) -> Message:
    """Render ``mail/<template>.txt`` in the resident's language.

    The template's first line is the subject; the rest, after one blank line,
    is the body.
    """
    settings = config.settings()
    language = locale if locale in LOCALES else DEFAULT
    with force_locale(language):
        consortium = settings.consortium_name_en if language == "en" else settings.consortium_name
        text = render_template(f"mail/{template}.txt", consortium_name=consortium,
                               issuer=settings.issuer, **context)
    subject, _, body = text.strip().partition("\n")
    return Message(to=to, subject=subject.strip(), body=body.strip() + "\n")


def outbox_active(settings: Settings | None = None) -> bool:
    settings = settings or config.settings()
    return not settings.smtp_url and not settings.is_production


def outbox_path(settings: Settings | None = None) -> Path:
    settings = settings or config.settings()
    path = Path(settings.outbox_dir)
    return path if path.is_absolute() else ROOT / path


def send(message: Message) -> None:
    """Hand one message to the mail server, or write it to the outbox. Raises MailError."""
    settings = config.settings()
    mail = EmailMessage(policy=email.policy.SMTP)
    mail["From"] = settings.mail_sender
    mail["To"] = message.to
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.format_datetime(utcnow())
    mail["Message-ID"] = email.utils.make_msgid(domain=settings.mail_sender.split("@")[-1])
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    mail.set_content(message.body, charset="utf-8")
    if settings.smtp_url:
        _deliver(settings.smtp_url, mail)
    elif outbox_active(settings):
        _write_outbox(outbox_path(settings), mail)
    else:  # pragma: no cover - Settings.validate refuses production without smtp_url
        raise MailError("no mail server configured")


def queue(messages: list[Message | None]) -> None:
    """Queue messages in the caller's transaction; the outbox sends them after the commit."""
    for message in messages:
        if message is None:
            continue
        outbox_queue.enqueue(KIND, "mail:" + message.to.rpartition("@")[2][:200],
                             {"to": message.to, "subject": message.subject,
                              "body": message.body})


def _render(row) -> dict[str, str]:
    return {"to": row.payload["to"], "subject": row.payload["subject"],
            "body": row.payload["body"]}


def init_app(app: Flask) -> None:
    """Make mail a kind of outbox message of this app."""

    def deliver(target: str, fields: dict[str, str], timeout: int) -> dict[str, str]:
        # Runs in a delivery thread: an app context of its own for the settings.
        with app.app_context():
            try:
                send(Message(to=fields["to"], subject=fields["subject"], body=fields["body"]))
            except MailError as exc:
                return {"result": "failed", "error": str(exc)[:200]}
        return {"result": "delivered"}

    outbox_queue.register(app, outbox_queue.Kind(
        name=KIND, render=_render, audit_tag=AuditTag.MAIL_DELIVERY,
        timeout=lambda: SMTP_TIMEOUT, send=deliver))


def _deliver(url: str, mail: EmailMessage) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    context = ssl.create_default_context()
    try:
        if parts.scheme == "smtps":
            server = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT,
                                      context=context)
        else:
            server = smtplib.SMTP(host, parts.port or 587, timeout=SMTP_TIMEOUT)
        with server:
            if parts.scheme == "smtp":
                server.ehlo()
                if server.has_extn("starttls"):
                    server.starttls(context=context)
                    server.ehlo()
                elif host not in ("127.0.0.1", "::1", "localhost"):
                    # Never send links or credentials in clear over the network.
                    raise MailError("the mail server does not offer STARTTLS")
            if parts.username:
                server.login(unquote(parts.username), unquote(parts.password or ""))
            server.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        log.error("mail to the SMTP server failed: %s", type(exc).__name__)
        raise MailError("the mail server refused or could not be reached") from exc


def _write_outbox(path: Path, mail: EmailMessage) -> None:
    path.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S%f}-{next(_sequence) % 10**6:06d}-{secrets.token(6)}.eml"
    (path / name).write_bytes(bytes(mail))
    log.info("mail written to the development outbox: %s", path / name)


# ---- the development outbox ----------------------------------------------------

@dataclass(frozen=True)
class OutboxEntry:
    name: str
    to: str
    subject: str
    date: str
    body: str


def outbox(limit: int = 200) -> list[OutboxEntry]:
    """The newest messages first."""
    path = outbox_path()
    if not path.is_dir():
        return []
    files = sorted(path.glob("*.eml"), reverse=True)[:limit]
    return [read_outbox(f.name) for f in files]


def read_outbox(name: str) -> OutboxEntry | None:
    if "/" in name or "\\" in name or not name.endswith(".eml") or name.startswith("."):
        return None
    file = outbox_path() / name
    if not file.is_file():
        return None
    mail = BytesParser(policy=email.policy.default).parsebytes(file.read_bytes())
    body = mail.get_body(preferencelist=("plain",))
    return OutboxEntry(name=name, to=str(mail["To"]), subject=str(mail["Subject"]),
                       date=str(mail["Date"]), body=body.get_content() if body else "")
