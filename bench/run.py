"""Machi ID benchmark: one command, its own servers and data, wrk as the load.

    .venv/bin/python bench/run.py --preset issue16      # issue 16's targets, ~17 min
    .venv/bin/python bench/run.py                       # every scenario, both peers
    .venv/bin/python bench/run.py --only token_client_credentials --backends postgres
    .venv/bin/python bench/run.py --soak 300 --backends postgres   # + 5-minute RSS run
    .venv/bin/python bench/run.py --backends postgres --peers none \
        --only token_client_credentials,introspection,userinfo \
        --servers granian,gunicorn-sync,gunicorn-gthread       # the server, measured

For each backend (PostgreSQL with Redis; SQLite, with Redis for rate limits) it
creates a database (PostgreSQL: CREATE DATABASE, dropped at the end; SQLite:
a temp file), migrates it, seeds it (bench/seed.py), starts ``idp serve`` with
production settings, and drives every scenario with wrk at each connection
level. The same run measures bench/hello.py (a bare Flask app under the same
server settings) and reports every figure also as a fraction of it; and,
alternating with ours, the peers (bench/peers.py: node's oidc-provider,
django-oauth-toolkit), reporting ours as a ratio to each. ``--servers`` runs the
app under gunicorn too, ``--scale-out`` two nodes behind nginx against one, and
the Targets block checks issue 16's targets against the run (bench/targets.py).

The issuer is ``https://127.0.0.1:PORT`` while the server listens on plain
http: the benchmark plays the TLS-terminating proxy. ``IDP_PROXY_HOPS=1`` and
every request carries ``X-Forwarded-Proto: https``, so Authlib sees the https
scheme, exactly as behind nginx. Rate limits are raised through settings
(``IDP_TOKEN_RATE_LIMIT``), not by changing code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import math
import multiprocessing
import os
import platform
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import peers  # noqa: E402
from bench import servers  # noqa: E402
from bench import targets  # noqa: E402
from bench.seed import Pools  # noqa: E402
from bench.seed import seed  # noqa: E402

ROOT = servers.ROOT
WRK_DIR = ROOT / "bench" / "wrk"
RESULTS = ROOT / "bench" / "results"
REDIS_DB_URL = "redis://127.0.0.1:6379/13"
NICE = 0  # --nice
SOAK_SLOT = 10  # seconds per scenario in the --soak rotation


@dataclass(frozen=True)
class Scenario:
    name: str
    unit: str = ""                 # "flows" or "events": units/s reported besides req/s
    one_connection_per_thread: bool = False
    min_duration: float = 0        # slow scenarios need longer to count enough requests
    soak: bool = False             # part of the --soak rotation (needs no finite pool)


SCENARIOS = [
    Scenario("discovery", soak=True),
    Scenario("jwks", soak=True),
    Scenario("token_client_credentials", soak=True),
    Scenario("token_refresh"),
    Scenario("introspection", soak=True),
    Scenario("userinfo", soak=True),
    Scenario("device_authorization", soak=True),
    Scenario("device_polling", soak=True),
    Scenario("code_flow", unit="flows", one_connection_per_thread=True, soak=True),
    Scenario("touch_events", unit="events", soak=True),
    # A few sign-ins a second, each seconds long under load: measured for 30 s at least.
    Scenario("password_login", min_duration=30),
]
BY_NAME = {s.name: s for s in SCENARIOS}


# ---- wrk -------------------------------------------------------------------------

def wrk(url: str, script: str, connections: int, duration: float, data: Path,
        threads: int, server: servers.Server | None = None, database: str = "") -> dict:
    """Run wrk once; the scenario script prints one BENCH_JSON line (common.lua)."""
    if threads > connections:
        threads = connections
    env = {**os.environ, "BENCH_DATA": str(data), "BENCH_WRK": str(WRK_DIR),
           "BENCH_THREADS": str(threads), "BENCH_RUN_ID": secrets.token_hex(6)}
    duration = max(1, round(duration))  # wrk takes whole seconds
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "30s", "-s", str(WRK_DIR / f"{script}.lua"), url]
    if NICE:
        # --nice: the server, its database backends and wrk run ahead of other jobs.
        if server is not None:
            servers.renice([server.process.pid, *server.workers()], NICE)
        if database:
            servers.renice(servers.database_backends(database), NICE)
        argv = ["nice", "-n", str(NICE), *argv]
    before = servers.cpu_snapshot()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=duration + 120, check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = servers.cpu_snapshot()
    own = {server.process.pid, *server.workers()} if server else set()
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line.removeprefix("BENCH_JSON "))
            result["cpu_s"] = servers.cpu_used(before, after, own, database)
            # wrk has exited by now: its CPU time is in our children's usage.
            result["cpu_s"]["wrk"] = (children_after.ru_utime + children_after.ru_stime
                                      - children_before.ru_utime - children_before.ru_stime)
            return result
    raise RuntimeError(f"wrk gave no result ({' '.join(argv)}):\n{done.stdout}\n{done.stderr}")


def summarise(raw: dict, scenario: Scenario, connections: int, server: servers.Server) -> dict:
    seconds = raw["duration_us"] / 1e6
    rps = raw["requests"] / seconds
    units = raw["units"] / seconds if scenario.unit else None
    return {
        "scenario": scenario.name,
        "connections": connections,
        "requests_per_s": round(rps, 1),
        "unit": scenario.unit or None,
        "units_per_s": round(units, 1) if units is not None else None,
        "p50_ms": round(raw["latency_us"]["p50"] / 1000, 2),
        "p99_ms": round(raw["latency_us"]["p99"] / 1000, 2),
        "errors": raw["unexpected"] + raw["socket_errors"],
        "unexpected_status": raw["unexpected"],
        "socket_errors": raw["socket_errors"],
        "statuses": raw["statuses"],
        "notes": raw["notes"],
        "worker_rss_mb": server.worker_rss_mb() if server else 0.0,
        # CPU per request (ms) of the server's workers, PostgreSQL, Redis and wrk:
        # the cost of a request independent of how busy the machine was.
        "cpu_ms_per_request": {k: round(1000 * v / max(raw["requests"], 1), 3)
                               for k, v in raw["cpu_s"].items() if k != "foreign"},
        # Cores' worth of CPU other processes on the machine used meanwhile.
        "foreign_cpu_cores": round(raw["cpu_s"]["foreign"] / seconds, 2),
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
    }


# ---- settings and servers -------------------------------------------------------------

def server_env(args, port: int, database_url: str, redis_url: str, secret: str) -> dict:
    env = {
        "IDP_ENVIRONMENT": "production",
        "IDP_ISSUER": f"https://127.0.0.1:{port}",
        "IDP_SECRET_KEY": secret,
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": redis_url,
        "IDP_PROXY_HOPS": "1",
        # Production refuses to start without a mail server; no scenario sends mail.
        "IDP_SMTP_URL": "smtp://127.0.0.1:25",
        # Signing keys are sealed at rest in production.
        "IDP_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        # Generous limits for the load generator, through settings only.
        "IDP_TOKEN_RATE_LIMIT": "10000000 per minute",
        "IDP_LOGIN_ADDRESS_LIMIT": "10000000 per minute",
        "IDP_LOG_LEVEL": "WARNING",
    }
    if args.workers:
        env["IDP_GUNICORN_WORKERS"] = str(args.workers)
    if args.threads:
        env["IDP_GUNICORN_THREADS"] = str(args.threads)
    if args.keepalive is not None:
        env["IDP_GUNICORN_KEEPALIVE"] = str(args.keepalive)
    return servers.clean_environ(env)


def settings_of(env: dict[str, str]) -> dict:
    from idp.config import Settings

    names = {f.upper(): f for f in Settings.__dataclass_fields__}
    return {names[k[4:]]: v for k, v in env.items() if k.startswith("IDP_") and k[4:] in names}


def login_form(url: str, values: dict[str, str]) -> None:
    """Fetch the sign-in form once; its cookie and CSRF token are replayed by wrk."""
    response = requests.get(url + "/login", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    response.raise_for_status()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.text).group(1)
    name = "machi_id_session"
    values["login_cookie"] = f"{name}={response.cookies[name]}"
    values["login_csrf"] = token


def write_values(data: Path, values: dict[str, str]) -> None:
    (data / "values.txt").write_text("".join(f"{k}\t{v}\n" for k, v in values.items()))


def verify_alone(stored: str, password: str, count: int) -> bool:
    """argon2id alone: ``count`` verifications of ``stored`` (its own parameters)."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    return all(hasher.verify(stored, password) for _ in range(count))


def mean_cost(moments: list[dict]) -> dict[str, float]:
    """The mean of measurements of argon2's cost (``argon2_verify_cost``)."""
    return {key: round(sum(m[key] for m in moments) / len(moments), 4)
            for key in ("wall_s", "cpu_s", "per_s")}


def argon2_verify_cost(app, email: str, password: str, rounds: int = 12) -> dict[str, float]:
    """What one argon2id verification of the seeded resident's hash costs here.

    ``cpu_s``: mean CPU time of a verification, one at a time (with
    argon2_parallelism > 1 one verification runs on several threads, so its CPU
    time, not its wall time, is what a core can do per second). ``per_s``:
    verifications per second of argon2 alone in one process per core, all at once (as
    the server's workers run them), the ceiling measured directly. Threads of this
    process measured one hash at a time: ``idp.accounts.passwords`` lets
    ``argon2_concurrency`` hashes run at once in a process.
    """
    from concurrent.futures import ProcessPoolExecutor

    from sqlalchemy import select

    from idp.accounts import passwords
    from idp.accounts.models import Resident
    from idp.extensions import db

    with app.app_context():
        stored = db.session.scalar(select(Resident.password_hash).where(Resident.email == email))
        walls, cpus = [], []
        for _ in range(rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            assert passwords.verify(stored, password)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)

    cores, each = os.cpu_count() or 1, 4
    spawn = multiprocessing.get_context("spawn")  # not a fork of this process's pools
    with ProcessPoolExecutor(cores, mp_context=spawn) as pool:
        assert all(pool.map(verify_alone, [stored] * cores, [password] * cores, [1] * cores))
        start = time.perf_counter()
        assert all(pool.map(verify_alone, [stored] * cores, [password] * cores,
                            [each] * cores))
        per_s = cores * each / (time.perf_counter() - start)
    return {"wall_s": round(sorted(walls)[rounds // 2], 4),
            "cpu_s": round(sum(cpus) / rounds, 4), "per_s": round(per_s, 2)}


# ---- one backend ------------------------------------------------------------------

class Pool:
    """A seeded pool each wrk run takes a fresh slice of: a refresh token is used
    once (rotation), and a device code polled again within its interval answers
    slow_down and grows its interval (RFC 8628 §3.5)."""

    def __init__(self, data: Path, name: str) -> None:
        self.path = data / f"{name}.txt"
        self.items = self.path.read_text().split()
        self.next = 0

    def take(self, count: int) -> None:
        chunk = self.items[self.next:self.next + count]
        if not chunk:  # used up: start again (the report shows the reuse as errors)
            self.next, chunk = 0, self.items[:count]
        self.next += len(chunk)
        self.path.write_text("\n".join(chunk) + "\n")


POOLED = {"token_refresh": "refresh_tokens", "device_polling": "device_codes"}


def run_backend(args, backend: str, database_url: str, redis_url: str, work: Path,
                hello: dict, report: dict) -> None:
    from alembic import command

    from idp import create_app
    from idp.cli.db import alembic_config

    port = servers.free_port()
    secret = secrets.token_urlsafe(36)
    env = server_env(args, port, database_url, redis_url, secret)
    settings = settings_of(env)
    app = create_app(settings)
    command.upgrade(alembic_config(app.extensions["idp.settings"].sqlalchemy_url), "head")
    levels = args.connections
    per_run = args.refresh_rate_max * args.duration
    needed = math.ceil(per_run * len(levels) + args.refresh_rate_max * args.warmup)
    # Seed the finite pools only for the scenarios that use them up (seeding
    # tens of thousands of rows takes a while); the soak reuses a small pool.
    chosen = {s.name for s in selected(args, backend)}
    pools = Pools(refresh_tokens=needed if "token_refresh" in chosen else 0,
                  device_codes=needed if "device_polling" in chosen else 1000,
                  kiosks=args.kiosks)
    data = work / backend
    print(f"[{backend}] seeding ({pools.refresh_tokens} refresh tokens, "
          f"{pools.device_codes} device codes)", flush=True)
    seeding = time.monotonic()
    values = seed(app, data, pools)
    report.setdefault("seconds", {})[f"{backend}_seeding"] = round(time.monotonic() - seeding, 1)
    # argon2's cost is measured right before each level of the sign-in scenario of the
    # first backend and right after the last (below), and each level is held to the bound of
    # the moments on either side of it, so the bound and the sign-ins it bounds are figures
    # of the same moment of the host: measured once at the start, a host 25 % slower by the
    # time of the sign-ins showed as sign-in at 72 % of a bound it did not have then; with
    # one moment before both levels and one after, a level was held to a moment 30 s away.
    argon2_moments = [] if "argon2_verify" not in report else None
    with app.app_context():
        from idp.extensions import db

        db.engine.dispose()
    if backend == "postgres":
        settling = time.monotonic()
        servers.settle(database_url)
        report["seconds"]["postgres_settling"] = round(time.monotonic() - settling, 1)
    pooled = {scenario: Pool(data, name) for scenario, name in POOLED.items()}
    server = servers.start_idp(env, port, work / f"{backend}-server.log")
    try:
        login_form(server.url, values)
        write_values(data, values)
        report["gunicorn"] = gunicorn_report(env)
        for scenario in selected(args, backend):
            threads_for = (lambda c: c) if scenario.one_connection_per_thread else (
                lambda c: min(args.wrk_threads, c))
            if args.warmup:
                if scenario.name in pooled:
                    pooled[scenario.name].take(int(args.refresh_rate_max * args.warmup))
                wrk(server.url, scenario.name, levels[0], args.warmup, data,
                    threads_for(levels[0]))
            login_rows = []
            for connections in levels:
                if scenario.name in pooled:
                    pooled[scenario.name].take(int(per_run))
                servers.wait_idle(server)  # what the last measurement queued is answered
                if scenario.name == "password_login" and argon2_moments is not None:
                    argon2_moments.append(argon2_verify_cost(app, values["email"],
                                                             values["password"]))
                    servers.wait_idle(server)
                raw = wrk(server.url, scenario.name, connections,
                          max(args.duration, scenario.min_duration), data,
                          threads_for(connections), server, database_url.rsplit("/", 1)[-1])
                row = summarise(raw, scenario, connections, server)
                row["backend"] = backend
                base = hello.get(connections)
                rate = row["units_per_s"] if scenario.unit == "flows" else row["requests_per_s"]
                row["fraction_of_hello"] = round(rate / base, 3) if base else None
                row["cpu_fraction_of_hello"] = cpu_fraction(row, report["hello"].get(
                    str(connections)), flows=scenario.unit == "flows")
                report["rows"].append(row)
                login_rows.append(row)
                print(format_row(row), flush=True)
            if scenario.name == "password_login" and argon2_moments:
                servers.wait_idle(server)  # the sign-ins still queued when wrk stopped
                argon2_moments.append(argon2_verify_cost(app, values["email"],
                                                         values["password"]))
                report["argon2_verify"] = mean_cost(argon2_moments) | {
                    "moments": argon2_moments,
                    "when": "right before each level of the sign-in scenario and right "
                            "after the last"}
                cores = report["machine"]["cores"]
                for k, row in enumerate(login_rows):  # between moments k and k + 1
                    row["argon2_bound_per_s"] = round(targets.argon2_bound(
                        mean_cost(argon2_moments[k:k + 2]), cores), 2)
            if args.profile and scenario.name in args.profile:
                profile(args, server, scenario, levels[-1], data, threads_for(levels[-1]),
                        backend)
        database = database_url.rsplit("/", 1)[-1]
        if args.peers and backend == args.backends[0]:
            with contextlib.ExitStack() as stack:
                peer_phase(args, backend, server, data, database, work, report, stack, env)
        if args.servers and backend == "postgres":
            servers_phase(args, server, data, database, work, report, env)
        if args.scale_out and backend == "postgres":
            scale_out_phase(args, data, database_url, redis_url, secret, report, env)
        if args.soak and backend == args.backends[0]:
            # A fresh server: the soak watches steady-state memory, not what the
            # sign-in scenario's argon2 verifications (64 MiB each) left behind.
            server.stop()
            server = servers.start_idp(env, port, work / f"{backend}-soak.log")
            report["soak"] = soak(args, server, data, database_url.rsplit("/", 1)[-1])
    finally:
        server.stop()


def cpu_fraction(row: dict, hello_row: dict | None, flows: bool = False) -> float | None:
    """The fraction of hello's rate this scenario would reach on a machine of its own:
    hello's CPU per request (server, database, Redis, wrk) over the scenario's, per
    flow for the code flow. Unlike req/s it does not move with other jobs' load."""
    if not hello_row:
        return None
    cost = sum(row["cpu_ms_per_request"].values())
    if flows and row["units_per_s"]:
        cost *= row["requests_per_s"] / row["units_per_s"]
    base = sum(hello_row["cpu_ms_per_request"].values())
    return round(base / cost, 3) if cost else None


def gunicorn_report(env: dict[str, str]) -> dict:
    """The server settings of the run (granian since `idp serve` left gunicorn)."""
    from idp.cli.serve import server_options
    from idp.config import Settings

    options = server_options(Settings.load(settings_of(env), environ={}), "127.0.0.1", 0)
    http1 = options["http1_settings"]
    return {"server": "granian", "workers": options["workers"],
            "threads": options["blocking_threads"], "keep_alive": http1.keep_alive,
            "keep_alive_s": Settings.load(settings_of(env), environ={}).gunicorn_keepalive,
            "header_read_timeout_ms": http1.header_read_timeout,
            "log_access": options["log_access"]}


def selected(args, backend: str = "postgres") -> list[Scenario]:
    only = args.sqlite_only if backend == "sqlite" and args.sqlite_only else args.only
    return [s for s in SCENARIOS if not only or s.name in only]


# ---- peers, servers and scale-out ------------------------------------------------

PEER_SCENARIOS = {"token_client_credentials": "peer_token", "introspection": "peer_introspection"}


def peer_phase(args, backend: str, server: servers.Server, data: Path, database: str,
               work: Path, report: dict, stack: contextlib.ExitStack,
               env: dict[str, str]) -> None:
    """Ours and each peer in turn on the token endpoint and introspection, at every
    connection level: ours, node, dot, ours. Ours' figure is the mean of the two
    measurements that bracket the peers, so drift of the machine meanwhile weighs on
    both sides alike."""
    options = gunicorn_report(env)
    admin_url = args.postgres_url if "postgres" in args.backends else None
    running, skipped = peers.start(args.peers, work, stack, admin_url, {
        "workers": options["workers"], "blocking_threads": options["threads"],
        "keep_alive": options["keep_alive"],
        "header_read_timeout_ms": options["header_read_timeout_ms"]})
    section = report["peers"] = {"requested": args.peers, "skipped": skipped, "ours": backend,
                                 "measured": list(running), "rounds": []}
    if "dot" in running:
        section["dot_server"] = {"server": "granian", "workers": options["workers"],
                                 "blocking_threads": options["threads"]}
    if "node" in running:
        section["node_version"] = subprocess.run(["node", "-v"], capture_output=True,
                                                 text=True).stdout.strip()
    if not running:
        return
    levels = args.connections
    for name, script in PEER_SCENARIOS.items():
        scenario = Scenario(name)
        if name == "introspection":
            # oidc-provider's in-memory adapter keeps its last 1,000 entries (an LRU):
            # the token scenario has pushed the first pool out, so draw it again.
            for peer in running.values():
                peer.write_data(peers.POOL)
        if args.warmup:
            # Ours too: the scenario before may have been sign-in, whose argon2
            # verifications leave the workers busy and large for a moment.
            wrk(server.url, name, levels[0], args.warmup, data, min(args.wrk_threads, levels[0]))
            for peer in running.values():
                wrk(peer.server.url, script, levels[0], args.warmup, peer.data,
                    min(args.wrk_threads, levels[0]))
        for connections in levels:
            threads = min(args.wrk_threads, connections)
            ours = []
            measured = {}
            for who in ["ours", *running, "ours"]:
                if who == "ours":
                    raw = wrk(server.url, name, connections, args.duration, data, threads,
                              server, database)
                    row = summarise(raw, scenario, connections, server)
                    row["backend"] = "ours"
                    ours.append(row)
                else:
                    peer = running[who]
                    raw = wrk(peer.server.url, script, connections, args.duration, peer.data,
                              threads, peer.server, peer.database)
                    row = summarise(raw, scenario, connections, peer.server)
                    row["backend"] = who
                    measured[who] = row
                print(format_row(row), flush=True)
            rate = targets.mean_rate(ours)
            round_ = {"scenario": name, "connections": connections, "backend": backend,
                      "ours_requests_per_s": rate,
                      "ours": ours, "peers": measured,
                      "ratios": {who: targets.ratio(rate, row["requests_per_s"])
                                 for who, row in measured.items()}}
            section["rounds"].append(round_)
            print(format_peer_round(round_), flush=True)


def format_peer_round(round_: dict) -> str:
    ratios = ", ".join(f"×{who} {targets.fmt(v)}" for who, v in round_["ratios"].items())
    return (f"{'peers':<16} {round_['scenario']:<25} {round_['connections']:>5} ours (mean of "
            f"{len(round_['ours'])}) {round_['ours_requests_per_s']:.0f} req/s: {ratios}")


SERVER_SCENARIOS = ["token_client_credentials", "introspection", "userinfo"]


def servers_phase(args, granian: servers.Server, data: Path, database: str, work: Path,
                  report: dict, env: dict[str, str]) -> None:
    """The app under each server of ``--servers`` on the same database, alternating per
    scenario and connection level: granian (``idp serve``), gunicorn sync, gunicorn
    gthread, with the same workers, threads and keep-alive."""
    options = gunicorn_report(env)
    started: dict[str, servers.Server] = {}
    try:
        for name in args.servers:
            if name == "granian":
                started[name] = granian
            else:
                kind = name.removeprefix("gunicorn-")
                port = servers.free_port()
                started[name] = servers.start_gunicorn(
                    env, port, work / f"{name}.log", kind,
                    {"workers": options["workers"], "threads": options["threads"],
                     "keep_alive_s": options["keep_alive_s"]})
        rows = report.setdefault("servers", {"settings": options, "rows": []})["rows"]
        for name in SERVER_SCENARIOS:
            if args.only and name not in args.only:
                continue
            scenario = Scenario(name)
            for connections in args.connections:
                threads = min(args.wrk_threads, connections)
                for who, server in started.items():
                    if args.warmup and connections == args.connections[0]:
                        wrk(server.url, name, connections, args.warmup, data, threads)
                    raw = wrk(server.url, name, connections, args.duration, data, threads,
                              server, database)
                    row = summarise(raw, scenario, connections, server)
                    row["backend"] = who
                    row["server"] = who
                    rows.append(row)
                    print(format_row(row), flush=True)
    finally:
        for who, server in started.items():
            if who != "granian":
                server.stop()


SCALE_SCENARIOS = ["token_client_credentials", "introspection", "touch_events"]
SCALE_TWOS = 3  # two-node measurements per scenario, each between two of one node


def scale_out_phase(args, data: Path, database_url: str, redis_url: str, secret: str,
                    report: dict, env: dict[str, str]) -> None:
    """Two ``idp serve`` nodes behind nginx (deploy/scale_out.py's Cluster: TLS, its own
    foreground nginx) on the same PostgreSQL and Redis, against one node behind an nginx
    of its own: one, two, one, two, one, two, one per scenario at the highest connection
    level; the ratio is the median of each two over the mean of the ones either side of it
    (``targets.bracketed_ratio``). With one, two, one, a single measurement of two nodes
    carried the whole ratio; with one, two, one, two, one and the mean of the twos over
    the mean of the ones, one jump of the host's speed did (14:08 on 2026-12-04: the
    host sped up by half during the introspection phase, and two nodes measured ×0.97
    though each of them beat the one node measured before it). Each node is sized to its
    share of this machine, as the sizing rule sizes a node to its host (docs/deploy.md:
    workers = its cores): the one node runs the run's workers, each of the two half of
    them (at least one). With the run's workers on each, the two nodes ran twice the
    processes on the same cores, and their ratio measured the oversubscription, not what
    the nodes share."""
    from deploy.scale_out import Cluster
    from deploy.scale_out import nginx_available

    section = report["scale_out"] = {"rounds": [], "rows": []}
    if not nginx_available():
        section["skipped"] = "nginx is missing: apt-get install -y nginx-light"
        print(f"[scale-out] skipped: {section['skipped']}", flush=True)
        return
    workers = gunicorn_report(env)["workers"]
    share = max(1, workers // 2)
    section["nodes"] = {"workers_per_node": {"one": workers, "two": share},
                        "proxy": "nginx (TLS, least_conn)"}
    node_env = {k: v for k, v in env.items() if k.startswith("IDP_")}
    with Cluster(database_url, redis_url, nodes=1, secret_key=secret, workers=workers,
                 env=node_env) as single, \
            Cluster(database_url, redis_url, nodes=2, secret_key=secret, workers=share,
                    env=node_env) as pair:
        connections = args.connections[-1]
        threads = min(args.wrk_threads, connections)
        targets_ = {"one": single.url, "two": pair.url}
        # The nodes' masters and workers are "the server" (nginx, the last process, is
        # counted with the load generator).
        groups = {"one": servers.Group(single.processes[:-1]),
                  "two": servers.Group(pair.processes[:-1])}
        for name in SCALE_SCENARIOS:
            if args.only and name not in args.only:
                continue
            scenario = Scenario(name, unit="events" if name == "touch_events" else "")
            if args.warmup:
                for url in targets_.values():
                    wrk(url, name, connections, args.warmup, data, threads)
            measured = []  # one, two, one, …, one
            for who in ("one", "two") * SCALE_TWOS + ("one",):
                raw = wrk(targets_[who], name, connections, args.duration, data, threads,
                          groups[who], database_url.rsplit("/", 1)[-1])
                row = summarise(raw, scenario, connections, groups[who])
                row["backend"] = f"{who}-node" if who == "one" else "two-nodes"
                measured.append(row)
                section["rows"].append(row)
                print(format_row(row), flush=True)
            rate = (lambda r: r["units_per_s"]) if scenario.unit else (
                lambda r: r["requests_per_s"])
            rates = [rate(r) for r in measured]
            one, two = statistics.mean(rates[0::2]), statistics.mean(rates[1::2])
            # A measurement in which nothing completed (too short for the latency of a
            # busy machine) gives no ratio rather than a meaningless one.
            complete = all(rates)
            bracketed = targets.bracketed_ratio(rates)
            round_ = {"scenario": name, "connections": connections, "one_node": round(one, 1),
                      "two_nodes": round(two, 1),
                      "ratio": round(bracketed, 2) if bracketed is not None else None,
                      "ratio_of_means": targets.ratio(two, one) if complete else None}
            section["rounds"].append(round_)
            print(f"{'scale-out':<16} {name:<25} {connections:>5} one node {one:.0f}/s, two nodes "
                  f"{two:.0f}/s: ×{targets.fmt(round_['ratio'])} (median of the brackets; "
                  f"mean over mean ×{targets.fmt(round_['ratio_of_means'])})", flush=True)


# ---- soak and profiles ------------------------------------------------------------

def soak(args, server: servers.Server, data: Path, database: str) -> dict:
    """Rotate the pool-free scenarios at the highest connection level for ``--soak``
    seconds, ``SOAK_SLOT`` seconds each, sampling the workers' RSS every 5 s. Every
    scenario's first slot grows the workers a little (code paths warm up); what counts
    is the growth after the first pass, when each has run once."""
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    start = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((round(time.monotonic() - start, 1), server.worker_rss_mb()))
            stop.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rotation = [s for s in SCENARIOS if s.soak]
    requests_done = errors = 0
    i = 0
    first_pass_s = None
    connections = args.connections[-1]
    while time.monotonic() - start < args.soak:
        scenario = rotation[i % len(rotation)]
        left = args.soak - (time.monotonic() - start)
        threads = connections if scenario.one_connection_per_thread else args.wrk_threads
        raw = wrk(server.url, scenario.name, connections, max(1, min(SOAK_SLOT, left)), data,
                  threads, server, database)
        requests_done += raw["requests"]
        errors += raw["unexpected"] + raw["socket_errors"]
        i += 1
        if i == len(rotation):
            first_pass_s = time.monotonic() - start
    stop.set()
    sampler.join()
    rss = [mb for _, mb in samples]
    after_first = [mb for t, mb in samples if first_pass_s is not None and t >= first_pass_s]
    result = {"seconds": args.soak, "connections": connections, "requests": requests_done,
              "errors": errors, "slot_s": SOAK_SLOT, "passes": round(i / len(rotation), 1),
              "rss_first_mb": rss[0], "rss_last_mb": rss[-1], "rss_max_mb": max(rss),
              "first_pass_s": round(first_pass_s, 1) if first_pass_s else None,
              "rss_after_first_pass_mb": after_first[0] if after_first else None,
              "samples": samples}
    print(f"soak: {requests_done} requests, {errors} errors, worker RSS "
          f"{rss[0]} → {rss[-1]} MB (max {max(rss)})", flush=True)
    return result


def profile(args, server: servers.Server, scenario: Scenario, connections: int, data: Path,
            threads: int, backend: str) -> None:
    """py-spy samples every worker during an extra (unreported) run of the scenario."""
    out = RESULTS / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    spies = []
    for pid in server.workers():
        path = out / f"{stamp}-{backend}-{scenario.name}-{pid}.txt"
        spies.append(subprocess.Popen(
            [str(servers.VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
             "--duration", str(int(args.duration)), "--rate", "250", "--gil",
             "--output", str(path), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    wrk(server.url, scenario.name, connections, args.duration, data, threads)
    for spy in spies:
        spy.wait(timeout=60)
    print(f"profiles in {out}/{stamp}-{backend}-{scenario.name}-*.txt", flush=True)


# ---- report --------------------------------------------------------------------

HEADER = (f"{'backend':<16} {'scenario':<25} {'conns':>5} {'req/s':>8} {'units/s':>10} "
          f"{'×hello':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MB':>7} "
          f"{'app ms':>7} {'db ms':>6} {'cpu×h':>6} {'noise':>6} {'×node':>6} {'×dot':>6}")


def format_row(row: dict) -> str:
    units = f"{row['units_per_s']:.0f} {row['unit'][:6]}" if row.get("unit") else ""
    fraction = row.get("fraction_of_hello")
    cpu = row.get("cpu_ms_per_request", {})
    cpu_share = row.get("cpu_fraction_of_hello", 1.0 if row["scenario"] == "hello" else None)
    return (f"{row['backend']:<16} {row['scenario']:<25} {row['connections']:>5} "
            f"{row['requests_per_s']:>8.0f} {units:>10} "
            f"{(f'{fraction:.2f}' if fraction is not None else '-'):>7} "
            f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>6} "
            f"{row['worker_rss_mb']:>7.0f} {cpu.get('server', 0):>7.2f} "
            f"{cpu.get('postgres', 0) + cpu.get('redis', 0):>6.2f} "
            f"{(f'{cpu_share:.2f}' if cpu_share is not None else '-'):>6} "
            f"{row.get('foreign_cpu_cores', 0):>6.2f} "
            f"{targets.fmt(row.get('peer_ratios', {}).get('node')):>6} "
            f"{targets.fmt(row.get('peer_ratios', {}).get('dot')):>6}")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal"))
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "wrk": " ".join(wrk_version[:2])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2, help="unreported seconds first")
    parser.add_argument("--connections", default="16,64",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--backends", default="postgres,sqlite", type=lambda s: s.split(","))
    parser.add_argument("--only", default=None, type=lambda s: s.split(","),
                        help=f"scenarios: {','.join(BY_NAME)}")
    parser.add_argument("--sqlite-only", default=None, type=lambda s: s.split(","),
                        help="scenarios on SQLite (default: those of --only)")
    parser.add_argument("--soak", type=float, default=None,
                        help="then rotate scenarios this many seconds watching worker RSS")
    parser.add_argument("--peers", default=None, type=names,
                        help="peers measured against ours in the same run: node (oidc-provider), "
                             "dot (django-oauth-toolkit), or none (default: node,dot)")
    parser.add_argument("--servers", default=None, type=names,
                        help="also run token, introspection and userinfo under each of "
                             f"{','.join(SERVERS)} alternately")
    parser.add_argument("--scale-out", action="store_true",
                        help="two idp serve nodes behind nginx against one (PostgreSQL)")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="issue16: every scenario the targets of issue 16 need, the peers, "
                             "scale-out and the 5-minute soak (~17 minutes)")
    parser.add_argument("--profile", default=None, type=lambda s: s.split(","),
                        help="scenarios to sample with py-spy in an extra run")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a superuser connection; the benchmark creates and drops its own database")
    parser.add_argument("--redis-url", default=REDIS_DB_URL,
                        help="a Redis database the benchmark may flush")
    parser.add_argument("--workers", type=int, help="IDP_GUNICORN_WORKERS for this run")
    parser.add_argument("--threads", type=int, help="IDP_GUNICORN_THREADS for this run")
    parser.add_argument("--keepalive", type=int, help="IDP_GUNICORN_KEEPALIVE for this run")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--refresh-rate-max", type=int, default=3000,
                        help="refresh tokens and device codes seeded per second of measurement")
    parser.add_argument("--kiosks", type=int, default=32,
                        help="kiosks posting touch events (each batch from the next one)")
    parser.add_argument("--no-hello", action="store_true")
    parser.add_argument("--nice", type=int, default=0,
                        help="scheduling priority of the servers, their PostgreSQL backends and "
                             "wrk (e.g. -10 on a shared machine; needs root)")
    args = parser.parse_args(argv)
    apply_preset(args)
    global NICE
    NICE = args.nice
    unknown = set(args.only or []) | set(args.sqlite_only or []) | set(args.profile or [])
    unknown -= set(BY_NAME)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if set(args.peers) - set(peers.KNOWN):
        parser.error(f"unknown peers: {', '.join(sorted(set(args.peers) - set(peers.KNOWN)))}")
    if set(args.servers) - set(SERVERS):
        parser.error(f"unknown servers (known: {', '.join(SERVERS)})")
    if (args.servers or args.scale_out) and "postgres" not in args.backends:
        parser.error("--servers and --scale-out run on PostgreSQL: add it to --backends")
    if not shutil.which("wrk"):
        parser.error("wrk is missing: apt-get install -y wrk")

    began = time.monotonic()
    report = {"started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]]),
              "machine": machine(), "duration_s": args.duration, "nice": args.nice,
              "preset": args.preset,
              "rows": [], "hello": {}}
    print(f"machine: {report['machine']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="machi-bench-") as tmp:
        work = Path(tmp)
        hello = {} if args.no_hello else measure_hello(args, work, report)
        for backend in args.backends:
            if backend == "postgres":
                import redis

                redis.Redis.from_url(args.redis_url).flushdb()
                with servers.postgres_database(args.postgres_url) as url:
                    run_backend(args, backend, url, args.redis_url, work, hello, report)
                redis.Redis.from_url(args.redis_url).flushdb()
            elif backend == "sqlite":
                # Production settings refuse per-process rate limits with several
                # workers: SQLite's node counts them in Redis too.
                import redis

                redis.Redis.from_url(args.redis_url).flushdb()
                url = f"sqlite:///{work / 'bench.sqlite3'}"
                run_backend(args, backend, url, args.redis_url, work, hello, report)
                redis.Redis.from_url(args.redis_url).flushdb()
            else:
                parser.error(f"unknown backend {backend}")
    report.setdefault("seconds", {})["total"] = round(time.monotonic() - began, 1)
    print_table(report)
    print(f"\nthe run took {report['seconds']['total'] / 60:.1f} minutes "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in report['seconds'].items() if k != 'total')})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return 0


SERVERS = ("granian", "gunicorn-sync", "gunicorn-gthread")
ISSUE16_SCENARIOS = ["token_client_credentials", "token_refresh", "introspection", "userinfo",
                     "device_polling", "code_flow", "touch_events", "password_login"]
PRESETS = {
    # Every figure the targets of issue 16 are checked against (the Targets block),
    # in one run: hello and hello_db, PostgreSQL with Redis at 16 and 64 connections,
    # the peers alternating with ours, SQLite's token and touch events, two nodes
    # against one, and the 5-minute soak.
    "issue16": {"only": ISSUE16_SCENARIOS, "sqlite_only": ["token_client_credentials",
                                                          "touch_events"],
                "backends": ["postgres", "sqlite"], "connections": [16, 64],
                "peers": list(peers.KNOWN), "scale_out": True, "soak": 300},
}


def names(value: str) -> list[str]:
    return [] if value in ("", "none") else value.split(",")


def apply_preset(args) -> None:
    """The preset's choices, except where the command line chose otherwise (options
    left at their defaults take the preset's value); then the remaining defaults."""
    preset = PRESETS.get(args.preset or "", {})
    defaults = {"backends": ["postgres", "sqlite"], "connections": [16, 64]}
    for key, value in preset.items():
        current = getattr(args, key)
        if current in (None, False) or (key in defaults and current == defaults[key]):
            setattr(args, key, value)
    if args.peers is None:
        args.peers = list(peers.KNOWN)
    if args.servers is None:
        args.servers = []
    if args.soak is None:
        args.soak = 0


def measure_hello(args, work: Path, report: dict) -> dict[int, float]:
    """bench/hello.py at each connection level; with PostgreSQL among the backends, also
    its ``/db`` route (one pooled SELECT 1 per request) as ``hello_db``."""
    port = servers.free_port()
    # Production settings want Redis for rate limits; hello never uses it.
    env = server_env(args, port, "sqlite://", args.redis_url, "x" * 40)
    ceiling = {}
    with contextlib.ExitStack() as stack:
        if "postgres" in args.backends:
            env["BENCH_HELLO_DB"] = stack.enter_context(
                servers.postgres_database(args.postgres_url))
        server = servers.start_hello(env, port, work / "hello.log")
        stack.callback(server.stop)
        routes = ["hello"] + (["hello_db"] if "BENCH_HELLO_DB" in env else [])
        for name in routes:
            scenario = Scenario(name)
            if args.warmup:
                wrk(server.url, name, args.connections[0], args.warmup, work, args.wrk_threads)
            for connections in args.connections:
                raw = wrk(server.url, name, connections, args.duration, work,
                          min(args.wrk_threads, connections), server,
                          env.get("BENCH_HELLO_DB", "").rsplit("/", 1)[-1])
                row = summarise(raw, scenario, connections, server)
                row["backend"] = "-" if name == "hello" else "postgres"
                if name == "hello":
                    row["fraction_of_hello"] = 1.0
                    report["hello"][str(connections)] = row
                    ceiling[connections] = row["requests_per_s"]
                else:
                    base = ceiling.get(connections)
                    row["fraction_of_hello"] = (round(row["requests_per_s"] / base, 3)
                                                if base else None)
                    row["cpu_fraction_of_hello"] = cpu_fraction(
                        row, report["hello"].get(str(connections)))
                    report.setdefault("hello_db", {})[str(connections)] = row
                print(format_row(row), flush=True)
    return ceiling


LEGEND = """
req/s: requests per second; units/s: completed code flows or stored touch events per second
×hello: req/s (code flow: flows/s) as a fraction of bench/hello.py at the same connections
hello_db: bench/hello.py's /db, one pooled SELECT 1 on PostgreSQL per request: the ceiling of
       any endpoint that must consult the database (revocation is checked on every request)
errors: unexpected statuses + socket errors; RSS: largest worker resident set (MB)
app ms / db ms: CPU per request of the server's workers / of PostgreSQL and Redis
cpu×h: hello's CPU per request (server + database + Redis + wrk) over this scenario's, per
       flow for the code flow: the ×hello a machine of its own would give
noise: cores' worth of CPU other processes on the machine used during the measurement
×node / ×dot: req/s over the peer's at the same connections in the same run: its token
       endpoint (token and device scenarios) or its introspection (introspection, userinfo)"""


def print_table(report: dict) -> None:
    targets.add_peer_ratios(report)
    print(LEGEND)
    print("\n" + HEADER)
    for row in [*report["hello"].values(), *report.get("hello_db", {}).values()]:
        print(format_row(row))
    for row in report["rows"]:
        print(format_row(row))
    if report.get("soak"):
        soak_ = report["soak"]
        print(f"\nsoak: {soak_['seconds']:.0f} s at {soak_['connections']} connections, "
              f"{soak_['passes']} passes over the scenarios ({soak_['slot_s']} s each), "
              f"{soak_['requests']} requests, {soak_['errors']} errors; largest worker RSS "
              f"{soak_['rss_first_mb']} MB at the start, {soak_['rss_after_first_pass_mb']} MB "
              f"after the first pass ({soak_['first_pass_s']} s), {soak_['rss_last_mb']} MB at "
              f"the end, {soak_['rss_max_mb']} MB at most")
    if report.get("argon2_verify"):
        cores = report["machine"]["cores"]
        cost = report["argon2_verify"]
        ceiling = cores / cost["cpu_s"]
        report["login_ceiling_per_s"] = round(targets.argon2_bound(cost, cores), 2)
        print(f"\nargon2id verify: {cost['wall_s'] * 1000:.0f} ms wall, {cost['cpu_s'] * 1000:.0f} "
              f"ms CPU → login ceiling {cores} cores ÷ CPU time = {ceiling:.2f}/s; "
              f"{cost['per_s']:.2f} verifications/s of argon2 alone measured in {cores} "
              f"processes at once" + (f" (means of {cost['when']})" if "when" in cost else "")
              + f"; the argon2 bound is the lower: {report['login_ceiling_per_s']:.2f}/s")
        for row in report["rows"]:
            if row["scenario"] == "password_login":
                own = row.get("argon2_bound_per_s")
                print(f"  {row['backend']} {row['connections']} connections: "
                      f"{row['requests_per_s'] / ceiling:.0%} of the ceiling, "
                      f"{row['requests_per_s'] / cost['per_s']:.0%} of measured argon2 alone"
                      + (f"; {row['requests_per_s'] / own:.0%} of the bound of the moments "
                         f"either side of it ({own:.2f}/s)" if own else ""))
    print_sections(report)
    report["targets"] = targets.targets(report, report.get("login_ceiling_per_s"))
    print("\n" + targets.format_targets(report["targets"]))


def print_sections(report: dict) -> None:
    """The peers, the servers and scale-out, each measured alternately within its block."""
    section = report.get("peers")
    if section:
        print(f"\npeers (ours on {section['ours']}, each peer, ours again; ours = the mean of "
              "its two):")
        for reason in section["skipped"].values():
            print(f"  skipped: {reason}")
        for round_ in section["rounds"]:
            for row in [*round_["ours"], *round_["peers"].values()]:
                print(format_row(row))
            print(format_peer_round(round_))
    if report.get("servers", {}).get("rows"):
        rows = report["servers"]["rows"]
        print(f"\nservers ({report['servers']['settings']['workers']} workers × "
              f"{report['servers']['settings']['threads']} threads; gunicorn sync: 1 request "
              "per worker at a time):")
        for row in rows:
            print(format_row(row))
        by_server: dict[str, dict] = {}
        for row in rows:
            entry = by_server.setdefault(row["server"], {"sum": {}, "token_p99": {}})
            entry["sum"][row["connections"]] = (entry["sum"].get(row["connections"], 0)
                                                + row["requests_per_s"])
            if row["scenario"] == "token_client_credentials":
                entry["token_p99"][row["connections"]] = row["p99_ms"]
        report["servers"]["summary"] = by_server
        for who, entry in by_server.items():
            levels = ", ".join(f"{c}: {entry['sum'][c]:.0f} req/s summed, token p99 "
                               f"{entry['token_p99'].get(c, 0):.0f} ms" for c in entry["sum"])
            print(f"  {who:<17} {levels}")
    scale = report.get("scale_out")
    if scale:
        print("\nscale-out (behind nginx, TLS; each node sized to its share of the machine):")
        if scale.get("skipped"):
            print(f"  skipped: {scale['skipped']}")
        for row in scale["rows"]:
            print(format_row(row))
        for round_ in scale["rounds"]:
            print(f"  {round_['scenario']:<25} one node {round_['one_node']:.0f}/s, two nodes "
                  f"{round_['two_nodes']:.0f}/s: ×{targets.fmt(round_['ratio'])}")


if __name__ == "__main__":
    sys.exit(main())
