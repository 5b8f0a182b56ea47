"""``idp demo``: a company, its demo app and a resident to click through locally.

Seeding is idempotent and repairs the demo: every run (``idp demo run`` or
``idp demo seed``) brings A社, B社 and C社 back to their demo state, so what an admin
did while trying the console does not stay. A suspended demo company is reinstated;
a revoked company or client (revocation is final) is replaced by a new one under the
same name, with a new client id and secret; ended data contracts are signed again
and the demo clients get their demo scopes back; a deleted demo resident is created
again. The earlier, revoked rows stay in the database as history.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select

from idp.accounts import service as accounts
from idp.accounts.models import Resident
from idp.cli import emit
from idp.cli import in_app
from idp.cli import json_option
from idp.clients import service as clients
from idp.clients.models import Client
from idp.clients.models import CompanyStatus
from idp.config import ROOT
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.extensions import db
from idp.keys import service as keys
from idp.kiosk import service as kiosks
from idp.kiosk.models import TouchEvent
from idp.sensors import service as sensors
from idp.sensors.models import SensorCount
from idp.terms import service as terms

STATE_FILE = ROOT / "var" / "demo.json"
RP_PORT = 5001
B_RP_PORT = 5002  # B社: a second company, so a newcomer sees pairwise subjects differ
KIOSK_PORT = 5003  # C社's signage kiosk (demo/kiosk.py): a live QR and the touches it logs
RESIDENT_EMAIL = "hanako@example.jp"
RESIDENT_PASSWORD = "sapporo-demo-2026"  # noqa: S105 - printed demo credential
CITIZENS = "demo.example.jp"  # the domain of the residents behind yesterday's touches


@click.group("demo")
def group() -> None:
    """Local demonstration data and servers."""


def _demo_service(company_name: str, name: str, port: int, purpose: str, purpose_en: str):
    """A demo company and its web app at ``http://127.0.0.1:<port>/``."""
    company = clients.create_company(company_name, actor="demo")
    client, secret = clients.register_client(
        company.id, name,
        redirect_uris=[f"http://127.0.0.1:{port}/callback"],
        post_logout_redirect_uris=[f"http://127.0.0.1:{port}/"],
        client_uri=f"http://127.0.0.1:{port}/",
        grant_types=["authorization_code", "refresh_token"],
        scopes=["openid", "name", "birth_year", "gender", "email", "postal_code",
                "offline_access"],
        purpose=purpose, purpose_en=purpose_en, policy_uri=f"http://127.0.0.1:{port}/",
        actor="demo",
    )
    return company, client, secret


# The data exchange in the demo: A社's service contributes what its users registered
# there, B社's service asks for it (the draft terms' item 5), each under a contract.
EXCHANGED = ("language", "interests", "household")
A_CONTRIBUTES = {"language": "ja", "interests": ["観光", "グルメ", "雪まつり"],
                 "household": {"members": 2, "children": 0}}


def _usable(client_id: str | None) -> Client | None:
    """The demo client if it can still be used, its company reinstated if an admin
    suspended it; None when it is gone or revoked (then the demo makes a new one)."""
    client = db.session.get(Client, client_id or "")
    if client is None or client.revoked_at is not None:
        return None
    if client.company.status == CompanyStatus.REVOKED:
        return None
    if client.company.status == CompanyStatus.SUSPENDED:
        clients.reinstate_company(client.company_id, actor="demo")
    return client


def _exchange_in_force(state: dict) -> bool:
    return bool(state.get("exchange")) and all(
        contracts.in_force(state[company], key) is not None
        for company in ("company_id", "b_company_id") for key in EXCHANGED)


def _seed_exchange(state: dict) -> dict:
    """Contracts for A社 (contributes) and B社 (receives) and the scopes that go with them:
    A社's service gets ``contribute:<key>`` and client_credentials (its backend), B社's
    ``registered:<key>``. Contracts are signed when none is in force; scopes an admin
    took away are given back."""
    categories.ensure_defaults()
    if _exchange_in_force(state):
        signed = state["exchange"]
    else:
        until = (utcnow() + dt.timedelta(days=365)).date()
        a = contracts.create(state["company_id"], list(EXCHANGED),
                             "XXXサービスで登録された利用者の言語・興味・世帯をコンソーシアムへ提供するため",
                             valid_until=until, breach_contact="privacy@a-sha.example.jp")
        b = contracts.create(state["b_company_id"], list(EXCHANGED),
                             "YYYサービスでのご案内を、利用者の言語・興味・世帯に合わせるため",
                             valid_until=until, breach_contact="privacy@b-sha.example.jp")
        signed = {"a_contract": a.id, "b_contract": b.id}
    for client_id, scopes, grants in (
            (state["client_id"], [f"contribute:{k}" for k in EXCHANGED], ["client_credentials"]),
            (state["b_client_id"], [f"registered:{k}" for k in EXCHANGED], [])):
        settings = clients.settings_of(db.session.get(Client, client_id))
        missing = ([s for s in scopes if s not in settings.scopes],
                   [g for g in grants if g not in settings.grant_types])
        if missing[0] or missing[1]:
            settings.scopes = [*settings.scopes, *missing[0]]
            settings.grant_types = [*settings.grant_types, *missing[1]]
            clients.update_client(client_id, settings, actor="demo")
    return signed


def seed_demo() -> dict:
    """Create A社 and B社, their demo apps, a kiosk and a resident, or bring them back to
    their demo state (see the module doc); return the state."""
    state = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    if _usable(state.get("client_id")) is None:
        company, client, secret = _demo_service(
            "A社", "XXXサービス", RP_PORT,
            "XXXサービスの会員登録と、お住まいの地域に合わせたお知らせの配信に利用します。",
            "To register you for XXX service and send news for your area.")
        state.update(company_id=company.id, client_id=client.id, client_secret=secret)
        state.pop("exchange", None)
    if _usable(state.get("b_client_id")) is None:
        b_company, b_client, b_secret = _demo_service(
            "B社", "YYYサービス", B_RP_PORT,
            "YYYサービスでの予約の受付と、ご本人確認の連絡に利用します。",
            "To take your bookings on YYY service and contact you about them.")
        state.update(b_company_id=b_company.id, b_client_id=b_client.id,
                     b_client_secret=b_secret)
        state.pop("exchange", None)
    if _usable(state.get("kiosk_client_id")) is None:
        kiosk_company = clients.create_company("C社", actor="demo")
        kiosk, kiosk_secret, _ = kiosks.create_kiosk(
            kiosk_company.id, "北2条広場サイネージ", "札幌駅前通 北2条西4丁目 交差点広場",
            actor="demo", latitude=43.06318, longitude=141.35370,
            contact="signage@c-sha.example.jp")
        state.update(kiosk_client_id=kiosk.id, kiosk_client_secret=kiosk_secret)
        state.pop("sensor_client_id", None)  # the counters belong to the new C社
        state.pop("city_day", None)
    if _usable(state.get("sensor_client_id")) is None:
        # The square's people counters (seed 000): C社 as well, one per side.
        company_id = db.session.get(Client, state["kiosk_client_id"]).company_id
        sensor, sensor_secret, _ = sensors.create_sensor(
            company_id, "北2条広場 人流センサー（北側）", sensors.Placement(
                location="札幌駅前通 北2条西4丁目 交差点広場 北側入口", latitude=43.06345,
                longitude=141.35362, area="広場北側の歩道（両方向）", retention_days=365,
                contact="signage@c-sha.example.jp"), actor="demo")
        state.update(sensor_client_id=sensor.id, sensor_client_secret=sensor_secret)
    if db.session.scalar(select(Resident).where(Resident.email == RESIDENT_EMAIL)) is None:
        accounts.create_resident(
            RESIDENT_EMAIL, RESIDENT_PASSWORD,
            accounts.Profile(family_name="札幌", given_name="花子", family_name_kana="サッポロ",
                             given_name_kana="ハナコ", birth_year=1990, gender="female",
                             postal_code="060-0042", locality="札幌市中央区"),
            email_verified=True, actor="demo", terms_version=terms.current_version(),
        )
    state["exchange"] = _seed_exchange(state)
    if "city_day" not in state or db.session.scalar(
            select(Resident).where(Resident.email == f"citizen00@{CITIZENS}")) is None:
        state["city_day"] = _seed_square_yesterday(state)
    keys.ensure_keys()
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(state, indent=2))
    return state


def _seed_square_yesterday(state: dict) -> str:
    """Yesterday at the square, so the city's export has something to show: twenty-four demo
    residents (no password anyone knows) touching the kiosk, anonymous touches and the
    sensor's counts. Returns the day (Japan time)."""
    tokyo = ZoneInfo("Asia/Tokyo")
    day = dt.datetime.now(tokyo).date() - dt.timedelta(days=1)
    rng = random.Random(2026)  # noqa: S311 - demo data, not a secret
    people = []
    for n in range(24):
        email = f"citizen{n:02d}@{CITIZENS}"
        resident = db.session.scalar(select(Resident).where(Resident.email == email))
        if resident is None:
            resident = accounts.create_resident(
                email, secrets.token_urlsafe(24),
                accounts.Profile(birth_year=1950 + 2 * n, gender=("female", "male")[n % 2],
                                 locality=("札幌市中央区", "札幌市北区")[n % 3 == 0]),
                email_verified=True, actor="demo")
        people.append(resident.id)
    for hour in range(8, 20):
        at = dt.datetime.combine(day, dt.time(hour, 10), tokyo)
        # At noon everyone is at the square: the one hour with enough residents to show.
        present = people if hour == 12 else rng.sample(people, rng.randint(0, 4))
        for resident_id in [*present, *[None] * rng.randint(2, 9)]:
            db.session.add(TouchEvent(client_id=state["kiosk_client_id"], target="map",
                                      resident_id=resident_id, occurred_at=at))
        for quarter in range(4):
            for direction in ("in", "out"):
                db.session.add(SensorCount(
                    client_id=state["sensor_client_id"], interval_seconds=900,
                    interval_start=at.replace(minute=15 * quarter), direction=direction,
                    count=rng.randint(20, 120)))
    return day.isoformat()


@group.command()
@json_option
@in_app
def seed(as_json: bool) -> None:
    """Create the demo company, app and resident (idempotent)."""
    state = seed_demo()
    emit(as_json, {**state, "email": RESIDENT_EMAIL, "password": RESIDENT_PASSWORD},
         f"demo client {state['client_id']}; resident {RESIDENT_EMAIL} / {RESIDENT_PASSWORD}")


@group.command()
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_context
def run(ctx: click.Context, port: int) -> None:
    """Migrate, seed, start the demo apps (:5001 A社, :5002 B社, kiosk :5003), serve the IdP."""
    from idp.cli.db import upgrade
    from idp.cli.serve import group as serve

    ctx.invoke(upgrade)
    app = ctx.obj.app
    with app.app_context():
        state = seed_demo()
        # Not an ``in_app`` command (it goes on to serve): the seed is committed
        # before the demo apps start and read it.
        db.session.commit()
    issuer = ctx.obj.settings.issuer
    contribute = [arg for key, value in A_CONTRIBUTES.items()
                  for arg in ("--contribute", f"{key}={json.dumps(value, ensure_ascii=False)}")]
    b_scope = "openid profile email offline_access " + " ".join(
        f"registered:{k}" for k in EXCHANGED)
    rps = [
        subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "demo.relying_party", "--issuer", issuer,
             "--client-id", client_id, "--port", str(rp_port), "--title", title, *extra],
            env={**os.environ, "DEMO_RP_CLIENT_SECRET": secret},
        )
        for client_id, secret, rp_port, title, extra in (
            (state["client_id"], state["client_secret"], RP_PORT, "A社 XXXサービス",
             contribute),
            (state["b_client_id"], state["b_client_secret"], B_RP_PORT, "B社 YYYサービス",
             ["--scope", b_scope]),
        )
    ]
    rps.append(subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "demo.kiosk", "--issuer", issuer,
         "--client-id", state["kiosk_client_id"], "--port", str(KIOSK_PORT)],
        env={**os.environ, "DEMO_KIOSK_CLIENT_SECRET": state["kiosk_client_secret"]},
    ))
    # The background worker: seals the audit trail every second (idp.audit.chain) and
    # retries deliveries to the demo apps, as a production node runs `idp worker`.
    rps.append(subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "idp.cli", "worker"], env=os.environ.copy()))
    time.sleep(0.5)
    click.echo(
        "\n"
        "  Machi ID is running.\n"
        f"  Identity provider:  {issuer}\n"
        f"  Demo app (A社 XXXサービス): http://127.0.0.1:{RP_PORT}/\n"
        f"  Demo app (B社 YYYサービス): http://127.0.0.1:{B_RP_PORT}/\n"
        "    sign in to both: each company gets a different 利用者ID (sub) for you.\n"
        "  Data exchange: sign in to A社 and press コンソーシアムへ提供 (A社 contributes your\n"
        "    language, interests and household by its own sub); then sign in to B社: the\n"
        "    consent screen names A社 as the source of item 5, and B社 receives the values.\n"
        f"    What is held and linked: {issuer}/account/data and {issuer}/account/consents\n"
        f"  Resident:           {RESIDENT_EMAIL}\n"
        f"  Password:           {RESIDENT_PASSWORD}\n"
        f"  Demo kiosk (C社 北2条広場サイネージ): http://127.0.0.1:{KIOSK_PORT}/\n"
        "    scan its QR with a phone (or open the link), sign in, approve, touch.\n"
        "  The same kiosk as a command-line simulator, in another terminal:\n"
        f"    .venv/bin/idp kiosks simulate --client-id {state['kiosk_client_id']} "
        f"--client-secret {state['kiosk_client_secret']}\n"
        "  A people-counting sensor posting counts (simulator):\n"
        f"    .venv/bin/idp sensors simulate --client-id {state['sensor_client_id']} "
        f"--client-secret {state['sensor_client_secret']}\n"
        f"  What is collected where (public): {issuer}/transparency\n"
        "  Yesterday at the square, as the city receives it (de-identified):\n"
        f"    .venv/bin/idp export city-stats --from {state['city_day']} --to "
        f"{state['city_day']} --granularity day --format json\n"
        f"    or the console's City data page: {issuer}/admin/city-data\n"
        "  Stop with Ctrl-C.\n",
        err=True,
    )
    try:
        ctx.invoke(serve, host="127.0.0.1", port=port, workers=2)
    finally:
        for rp in rps:
            rp.terminate()
