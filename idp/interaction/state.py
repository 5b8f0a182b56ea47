"""Per-browser state: the signed-in session and pending authorization requests.

A pending request (an "interaction") is the authorization request's query
string kept in the signed session cookie while the resident signs in or
decides on consent; it is replayed through Authlib when they are done.
"""

from __future__ import annotations

import time

from flask import g
from flask import session

from idp import secrets
from idp.access import sessions as accounts  # start/load/end_session
from idp.access.models import BrowserSession
from idp.accounts.models import Resident
from idp.extensions import db

INTERACTION_TTL = 1800
MAX_INTERACTIONS = 5


def browser_session() -> BrowserSession | None:
    if "idp_browser_session" not in g:
        g.idp_browser_session = accounts.load_session(session.get("sid"))
    return g.idp_browser_session


def current_resident() -> Resident | None:
    row = browser_session()
    return db.session.get(Resident, row.resident_id) if row else None


# What a browser carries across sign-in: the requests it is in the middle of.
KEPT_AT_SIGN_IN = ("interactions", "locale", "device_code_id", "device_user_code")


def sign_in(resident: Resident, amr: list[str] | None = None) -> BrowserSession:
    """Start a new session: a fresh id, so a planted cookie never becomes signed in."""
    kept = {key: session[key] for key in KEPT_AT_SIGN_IN if key in session}
    session.clear()
    sid, row = accounts.start_session(resident, amr)
    session["sid"] = sid
    session.update(kept)
    session.permanent = True
    g.idp_browser_session = row
    return row


def sign_out() -> None:
    accounts.end_session(session.get("sid"))
    session.clear()
    g.idp_browser_session = None


def save_interaction(query: str, locale: str | None) -> str:
    now = time.time()
    pending = {
        uid: item for uid, item in session.get("interactions", {}).items()
        if item["created"] + INTERACTION_TTL > now
    }
    uid = secrets.token(12)
    pending[uid] = {"query": query, "created": now, "login_session": None, "locale": locale}
    while len(pending) > MAX_INTERACTIONS:
        pending.pop(min(pending, key=lambda k: pending[k]["created"]))
    session["interactions"] = pending
    return uid


def load_interaction(uid: str | None) -> dict | None:
    item = session.get("interactions", {}).get(uid or "")
    if item is None or item["created"] + INTERACTION_TTL <= time.time():
        return None
    return item


def mark_logged_in(uid: str, row: BrowserSession) -> None:
    pending = session.get("interactions", {})
    if uid in pending:
        pending[uid]["login_session"] = row.id
        session["interactions"] = pending


def choose_locale(code: str) -> None:
    """The resident picked a language: it overrides ui_locales of pending requests."""
    pending = session.get("interactions", {})
    for item in pending.values():
        item["locale"] = code
    session["interactions"] = pending


def finish_interaction(uid: str) -> None:
    pending = session.get("interactions", {})
    if pending.pop(uid, None) is not None:
        session["interactions"] = pending
