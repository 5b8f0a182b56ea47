"""Shared steps for the resident's pages: the mail outbox, forms with CSRF, TOTP codes."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pyotp
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.mail import service as mail
from tests import factories

LINK = re.compile(r"https?://[^\s]+")


def outbox() -> list[mail.OutboxEntry]:
    """Every message written to the test's outbox, oldest first."""
    return list(reversed(mail.outbox()))


def mails_to(address: str) -> list[mail.OutboxEntry]:
    return [m for m in outbox() if m.to == address]


def link_in(message: mail.OutboxEntry, path: str) -> str:
    """The path and query of the link to ``path`` in a message (for the test client)."""
    for url in LINK.findall(message.body):
        parts = urlsplit(url)
        if parts.path == path:
            return f"{parts.path}?{parts.query}" if parts.query else parts.path
    raise AssertionError(f"no link to {path} in: {message.body}")


def links_in(message: mail.OutboxEntry) -> list[str]:
    return LINK.findall(message.body)


def post_form(client, page_url: str, data: dict, action: str | None = None, **kwargs):
    """GET the page for its CSRF token, then POST ``data`` to it (or to ``action``)."""
    page = client.get(page_url)
    assert page.status_code == 200, page.text
    return client.post(action or page_url, data={"csrf_token": factories.csrf(page.text), **data},
                       **kwargs)


def sign_in(client, email="hanako@example.jp", password=factories.PASSWORD):
    response = factories.Browser(client).login(email, password)
    assert response.status_code == 302, response.text
    return response


def tags(*wanted: str) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if wanted:
        query = query.where(AuditEvent.tag.in_(wanted))
    return list(db.session.scalars(query))


def totp_code(secret: str, at: float | None = None) -> str:
    return pyotp.TOTP(secret).at(at if at is not None else time.time())


class Inputs(HTMLParser):
    """Inputs, selects and labels of a page, to check that every field is labelled."""

    def __init__(self, html: str):
        super().__init__()
        self.fields: list[dict[str, str | None]] = []
        self.labels: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "select", "textarea"):
            self.fields.append({"tag": tag, **attrs})
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])

    @property
    def inputs(self) -> list[dict[str, str | None]]:
        """The <input> elements alone, each as a dict of its attributes."""
        return [{k: v for k, v in field.items() if k != "tag"}
                for field in self.fields if field["tag"] == "input"]

    def unlabelled(self) -> list[dict]:
        return [f for f in self.fields
                if f.get("type") not in ("hidden", "submit", "button")
                and f.get("id") not in self.labels]

    def named(self, name: str) -> list[dict]:
        return [f for f in self.fields if f.get("name") == name]


# ---- registration (email first, then the form of /register/complete) ---------------

EMAIL = "taro@example.jp"
PASSWORD = "sapporo snow festival"
FULL_FORM = {
    "password": PASSWORD, "password_confirm": PASSWORD,
    "family_name": "札幌", "given_name": "太郎", "family_name_kana": "サッポロ",
    "given_name_kana": "タロウ", "birth_year": "1985", "gender": "male",
    "postal_code": "060-0001", "locality": "札幌市中央区",
    "agree_provision": "yes", "agree_collection": "yes", "agree_terms": "yes",
}


def request_link(client, email=EMAIL, **extra):
    return post_form(client, "/register", {"email": email, **extra})


def registration_link(email=EMAIL) -> str:
    (message,) = [m for m in mails_to(email) if "/register/complete" in m.body]
    return link_in(message, "/register/complete")


def complete(client, link: str, **overrides):
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = parse_qs(urlsplit(link).query)["token"][0]
    version = re.search(r'name="terms_version" value="([^"]+)"', page.text).group(1)
    data = {**FULL_FORM, "token": token, "terms_version": version,
            "csrf_token": factories.csrf(page.text), **overrides}
    data = {k: v for k, v in data.items() if v is not None}
    return client.post("/register/complete", data=data)
