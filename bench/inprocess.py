"""The app's own CPU per request, in process, without a server or a load generator.

``bench/run.py`` measures the whole machine under load: the server, wrk and the
database share two cores, and a figure moves with the host. To weigh one change to a
hot path, this calls the production app (``idp serve``'s WSGI app, production
settings, PostgreSQL and Redis) directly with a prepared WSGI environ, one request
after another in one thread, and reports per request the process's CPU time (user and
system), the wall time, the least CPU of a batch and the Python function calls, for the
endpoints a company calls on every request of its users. Rounds alternate between
scenarios, and the figure is the median round, so a busy moment of the host weighs
little.

    .venv/bin/python bench/inprocess.py [--rounds 5] [--requests 1000] [--only token,introspection]

It creates a PostgreSQL database of its own (dropped at the end), migrated and
seeded by ``bench/seed.py`` as ``bench/run.py`` does.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402
from bench.run import REDIS_DB_URL  # noqa: E402
from bench.run import server_env  # noqa: E402
from bench.run import settings_of  # noqa: E402
from bench.seed import Pools  # noqa: E402
from bench.seed import seed  # noqa: E402

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def environ(method: str, path: str, body: str = "", headers: dict | None = None) -> dict:
    """A WSGI environ as the TLS proxy in front of ``idp serve`` would pass it."""
    data = body.encode()
    env = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8443", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "CONTENT_LENGTH": str(len(data)),
        "HTTP_HOST": "127.0.0.1:8443", "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_FOR": "127.0.0.1",
    }
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    env["_body"] = data
    return env


def call(app, env: dict, expect: int) -> tuple[bytes, dict]:
    env = dict(env)
    env["wsgi.input"] = io.BytesIO(env.pop("_body"))
    status, headers = [], {}

    def start_response(s, h, e=None):
        status.append(s)
        headers.update(h)

    body = b"".join(app(env, start_response))
    if int(status[0].split()[0]) != expect:
        raise SystemExit(f"{env['PATH_INFO']}: {status[0]} {body[:300]!r}")
    return body, headers


def scenarios(values: dict, data: Path) -> dict[str, Callable]:
    """The requests, from the values and pools ``bench/seed.py`` wrote to ``data``."""
    access, codes, kiosk_tokens = ((data / f"{pool}.txt").read_text().split()
                                   for pool in ("access_tokens", "device_codes", "kiosk_tokens"))
    backend = {"Authorization": values["backend_basic"]}
    kiosk = {"Authorization": values["kiosk_basic"]}
    token = environ("POST", "/token", "grant_type=client_credentials&scope=touch_events",
                    backend)
    introspections = [environ("POST", "/introspect",
                              f"token_type_hint=access_token&token={t}", backend)
                      for t in access]
    userinfos = [environ("GET", "/userinfo", headers={"Authorization": f"Bearer {t}"})
                 for t in access]
    polls = [environ("POST", "/token", f"grant_type={DEVICE_GRANT}&device_code={c}", kiosk)
             for c in codes]
    occurred = values["occurred_at"]
    run, batches = secrets.token_hex(4), itertools.count()

    def touches(app, i):  # a batch of 100 with unique event ids, as bench/wrk/touch_events.lua
        batch = next(batches)
        events = ",".join(f'{{"occurred_at":"{occurred}","target":"map-north",'
                          f'"event_id":"{run}-{batch}-{e}"}}' for e in range(100))
        env = environ("POST", "/api/touch-events", '{"events":[' + events + "]}",
                      {"Authorization": f"Bearer {kiosk_tokens[i % len(kiosk_tokens)]}"})
        env["CONTENT_TYPE"] = "application/json"
        call(app, env, 201)

    def code_flow(app, i):  # as bench/wrk/code_flow.lua: /authorize, /token, /userinfo
        query = urlencode({
            "response_type": "code", "client_id": values["rp_id"],
            "redirect_uri": values["redirect_uri"], "scope": values["flow_scope"],
            "state": f"s{i}", "nonce": f"{run}-{next(batches)}",
            "code_challenge": values["code_challenge"], "code_challenge_method": "S256"})
        env = environ("GET", "/authorize", headers={"Cookie": values["session_cookie"]})
        env["QUERY_STRING"] = query
        _, headers = call(app, env, 302)
        code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
        body, _ = call(app, environ("POST", "/token", urlencode({
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": values["redirect_uri"], "code_verifier": values["code_verifier"]}),
            {"Authorization": values["rp_basic"]}), 200)
        access_token = json.loads(body)["access_token"]
        call(app, environ("GET", "/userinfo",
                          headers={"Authorization": f"Bearer {access_token}"}), 200)

    login_page: dict = {}

    def password_login(app, i):  # as bench/wrk/password_login.lua: the form fetched once
        if not login_page:
            body, headers = call(app, environ("GET", "/login"), 200)
            cookie = headers["Set-Cookie"].split(";")[0]
            csrf = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body).group(1)
            login_page["env"] = environ("POST", "/login", urlencode({
                "email": values["email"], "password": values["password"],
                "csrf_token": csrf.decode()}), {"Cookie": cookie})
        call(app, login_page["env"], 302)

    return {
        "token": lambda app, i: call(app, token, 200),
        "code_flow": code_flow,
        "touch_events": touches,
        "introspection": lambda app, i: call(app, introspections[i % len(introspections)], 200),
        "userinfo": lambda app, i: call(app, userinfos[i % len(userinfos)], 200),
        # A pending code polled again within its interval answers slow_down (400).
        "device_polling": lambda app, i: call(app, polls[i % len(polls)], 400),
        # argon2 by design: run it with --only password_login and few --requests.
        "password_login": password_login,
    }


BATCH = 20


def measure(app, send: Callable, requests: int) -> tuple[float, float, float, float]:
    """CPU ms, of it system ms, wall ms per request, and the least CPU ms per request of
    a batch of ``BATCH`` (this thread's CPU clock: a busy host slows a batch down, never
    speeds it up, so the least is the figure that drifts least)."""
    times, wall = os.times(), time.perf_counter()
    least = float("inf")
    for start in range(0, requests, BATCH):
        began = time.thread_time()
        for i in range(start, min(start + BATCH, requests)):
            send(app, i)
        least = min(least, (time.thread_time() - began) / (min(start + BATCH, requests) - start))
    after = os.times()
    user, system = after.user - times.user, after.system - times.system
    return ((user + system) * 1000 / requests, system * 1000 / requests,
            (time.perf_counter() - wall) * 1000 / requests, least * 1000)


def python_calls(app, send: Callable, requests: int = 200, keep: Path | None = None,
                 cpu: bool = False) -> float:
    """Python function calls per request: unlike time, the same on any host and at any
    load, so a change's effect on the Python work shows without noise. With ``keep``, the
    profile is written there (``pstats`` format) to see where the calls go."""
    profiler = cProfile.Profile(time.thread_time) if cpu else cProfile.Profile()
    profiler.enable()
    for i in range(requests):
        send(app, i)
    profiler.disable()
    if keep is not None:
        profiler.dump_stats(keep)
    return pstats.Stats(profiler).total_calls / requests


def statements_of(app, wsgi, send: Callable) -> list[str]:
    """The SQL statements one request (one flow) sends, transaction control included."""
    from sqlalchemy import event

    from idp.extensions import db

    sent: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        where = ""
        if os.environ.get("BENCH_STATEMENT_CALLERS"):
            import traceback
            where = " <- " + " < ".join(
                f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.name}"
                for f in reversed(traceback.extract_stack()) if "/idp/" in f.filename)[:400]
        sent.append(" ".join(statement.split())[:90] + where)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "begin", lambda conn: sent.append("BEGIN"))
    event.listen(engine, "commit", lambda conn: sent.append("COMMIT"))
    event.listen(engine, "rollback", lambda conn: sent.append("ROLLBACK"))
    try:
        send(wsgi, 10**6)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default=REDIS_DB_URL)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--statements", action="store_true",
                        help="print the SQL statements of one request of each scenario")
    parser.add_argument("--pstats", type=Path, default=None,
                        help="a directory to keep each scenario's call profile in "
                             "(SCENARIO.pstats, read with python -m pstats)")
    parser.add_argument("--cpu-profile", action="store_true",
                        help="time the kept profiles in CPU time, not wall time")
    args = parser.parse_args(argv)

    from alembic import command

    from idp import create_app
    from idp.cli.db import alembic_config

    with tempfile.TemporaryDirectory(prefix="machi-inprocess-") as tmp, \
            servers.postgres_database(args.postgres_url) as url:
        bench_args = argparse.Namespace(workers=None, threads=None, keepalive=None)
        env = server_env(bench_args, 8443, url, args.redis_url, secrets.token_urlsafe(36))
        settings = settings_of(env)
        app = create_app(settings)
        command.upgrade(alembic_config(app.extensions["idp.settings"].sqlalchemy_url), "head")
        values = seed(app, Path(tmp), Pools(refresh_tokens=0, device_codes=1000, kiosks=4))
        wsgi = app  # with the forwarded-headers middleware create_app puts in front
        chosen = scenarios(values, Path(tmp))
        if args.only:
            chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
        else:  # argon2 by design: only when asked for
            chosen.pop("password_login")
        for send in chosen.values():  # warm: caches, prepared statements
            measure(wsgi, send, 200)
        if args.statements:
            for name, send in chosen.items():
                print(f"-- {name}")
                for statement in statements_of(app, wsgi, send):
                    print("  ", statement)
        if args.pstats is not None:
            args.pstats.mkdir(parents=True, exist_ok=True)
        calls = {name: python_calls(wsgi, send, keep=args.pstats and
                                    args.pstats / f"{name}.pstats", cpu=args.cpu_profile)
                 for name, send in chosen.items()}
        figures: dict[str, list[tuple[float, ...]]] = {name: [] for name in chosen}
        for _ in range(args.rounds):
            for name, send in chosen.items():
                figures[name].append(measure(wsgi, send, args.requests))
        with app.app_context():
            from idp.extensions import db

            db.engine.dispose()
    print(f"{'scenario':<16} {'CPU ms':>8} {'sys ms':>8} {'wall ms':>8} {'least ms':>8} "
          f"{'py calls':>9}   (median of {args.rounds} rounds of {args.requests} requests, "
          f"one thread; least: of batches of {BATCH})")
    for name, rounds in figures.items():
        cpu, system, wall = (statistics.median(r[k] for r in rounds) for k in range(3))
        least = min(r[3] for r in rounds)
        print(f"{name:<16} {cpu:8.3f} {system:8.3f} {wall:8.3f} {least:8.3f} "
              f"{calls[name]:9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
