"""The peers measured in the same run as Machi ID (bench/run.py ``--peers``).

- ``node``: node's oidc-provider (bench/peers/oidc-provider: server.mjs and its
  package-lock.json, installed with ``npm ci`` there, never globally), its
  in-memory adapter, one process.
- ``dot``: django-oauth-toolkit on PostgreSQL (bench/peers/dot: a minimal Django
  project), in a virtualenv of its own (``bench/.peers-venv``, made here from
  bench/peers/dot/requirements.txt), with a database of its own, served by granian
  (WSGI) with the same workers × blocking threads as ``idp serve``.

Each peer has one confidential client with client_secret_basic and a plain
secret, the client_credentials grant and RFC 7662 introspection. A peer that
cannot be installed or started is skipped with the reason (``Unavailable``),
which the report prints.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests

from bench import servers

ROOT = servers.ROOT
PEERS_DIR = ROOT / "bench" / "peers"
NODE_DIR = PEERS_DIR / "oidc-provider"
DOT_DIR = PEERS_DIR / "dot"
PEERS_VENV = ROOT / "bench" / ".peers-venv"
KNOWN = ("node", "dot")
CLIENT_ID = "bench-backend"
# Access tokens each peer's introspection is asked about: fewer than the 1,000 entries
# oidc-provider's in-memory adapter keeps (an LRU), so none is forgotten meanwhile.
POOL = 500
GRANT_FORM = "grant_type=client_credentials&scope=touch_events"


class Unavailable(Exception):
    """A peer that cannot be installed or started here; the message says why."""


@dataclass
class Peer:
    name: str
    server: servers.Server
    token_path: str
    introspect_path: str
    basic: str
    data: Path          # values.txt and peer_tokens.txt for bench/wrk/peer_*.lua
    database: str = ""  # its PostgreSQL database's name (CPU accounting), if any

    def write_data(self, tokens: int) -> None:
        """Fetch ``tokens`` access tokens for the introspection pool, and the values."""
        self.data.mkdir(parents=True, exist_ok=True)
        pool = []
        with requests.Session() as session:
            for _ in range(tokens):
                response = session.post(
                    self.server.url + self.token_path, data=GRANT_FORM, timeout=30,
                    headers={"Authorization": self.basic, "X-Forwarded-Proto": "https",
                             "Content-Type": "application/x-www-form-urlencoded"})
                if response.status_code != 200:
                    raise Unavailable(f"{self.name}: token endpoint answered "
                                      f"{response.status_code}: {response.text[:300]}")
                pool.append(response.json()["access_token"])
            # One introspection, so a misconfigured peer is skipped with a reason.
            check = session.post(
                self.server.url + self.introspect_path, data={"token": pool[0]}, timeout=30,
                headers={"Authorization": self.basic, "X-Forwarded-Proto": "https"})
            if check.status_code != 200 or check.json().get("active") is not True:
                raise Unavailable(f"{self.name}: introspection answered {check.status_code}: "
                                  f"{check.text[:300]}")
        (self.data / "peer_tokens.txt").write_text("\n".join(pool) + "\n")
        values = {"peer_basic": self.basic, "peer_token_path": self.token_path,
                  "peer_introspect_path": self.introspect_path, "peer_token_body": GRANT_FORM}
        (self.data / "values.txt").write_text("".join(f"{k}\t{v}\n" for k, v in values.items()))


def basic(client_id: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _run(argv: list[str], what: str, timeout: float = 600, **kwargs) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"{what}: {error}") from error
    if done.returncode:
        raise Unavailable(f"{what} failed ({done.returncode}): "
                          f"{(done.stderr or done.stdout).strip()[-500:]}")


# ---- node's oidc-provider --------------------------------------------------------

def install_node() -> None:
    """``npm ci`` in bench/peers/oidc-provider when its node_modules is missing or older
    than the lock file."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise Unavailable("node: node or npm is not installed")
    lock = NODE_DIR / "package-lock.json"
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], "node: npm ci",
         cwd=NODE_DIR)


def start_node(work: Path, stack: ExitStack) -> Peer:
    install_node()
    port = servers.free_port()
    secret = secrets.token_urlsafe(32)
    try:
        server = servers.Server(["node", str(NODE_DIR / "server.mjs"), str(port), secret],
                                servers.clean_environ({"NODE_ENV": "production"}), port,
                                work / "peer-node.log", "/.well-known/openid-configuration",
                                cwd=NODE_DIR)
    except RuntimeError as error:
        raise Unavailable(f"node: {error}") from error
    stack.callback(server.stop)
    return Peer("node", server, "/token", "/token/introspection", basic(CLIENT_ID, secret),
                work / "peer-node")


# ---- django-oauth-toolkit ---------------------------------------------------------

def install_dot() -> Path:
    """The peers' virtualenv, (re)installed when requirements.txt changed; its python."""
    requirements = DOT_DIR / "requirements.txt"
    stamp = PEERS_VENV / "requirements.sha256"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    python = PEERS_VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return python
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(PEERS_VENV)], "dot: python -m venv")
    _run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
         "dot: pip install -r bench/peers/dot/requirements.txt")
    stamp.write_text(want + "\n")
    return python


def start_dot(work: Path, stack: ExitStack, admin_url: str, options: dict) -> Peer:
    """DOT on a PostgreSQL database of its own, under granian with ``options`` (the
    workers, blocking threads, keep-alive and header timeout of ``idp serve``)."""
    python = install_dot()
    database = stack.enter_context(servers.postgres_database(admin_url))
    secret = secrets.token_urlsafe(32)
    env = servers.clean_environ({"BENCH_DOT_DATABASE_URL": database,
                                 "BENCH_DOT_SECRET_KEY": secrets.token_urlsafe(40),
                                 "DJANGO_SETTINGS_MODULE": "benchdot.settings"})
    _run([str(python), str(DOT_DIR / "setup_bench.py"), CLIENT_ID, secret],
         "dot: migrate and register the client", env=env, cwd=DOT_DIR)
    port = servers.free_port()
    argv = [str(PEERS_VENV / "bin" / "granian"), "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(options["workers"]),
            "--blocking-threads", str(options["blocking_threads"]),
            "--http1-header-read-timeout", str(options["header_read_timeout_ms"]),
            "--http1-keep-alive" if options["keep_alive"] else "--no-http1-keep-alive",
            "--no-ws", "--log-level", "warning", "benchdot.wsgi:application"]
    try:
        server = servers.Server(argv, env, port, work / "peer-dot.log", "/health",
                                cwd=DOT_DIR)
    except RuntimeError as error:
        raise Unavailable(f"dot: {error}") from error
    stack.callback(server.stop)
    return Peer("dot", server, "/o/token/", "/o/introspect/", basic(CLIENT_ID, secret),
                work / "peer-dot", database.rsplit("/", 1)[-1])


def start(names: list[str], work: Path, stack: ExitStack, admin_url: str | None,
          options: dict, tokens: int = POOL) -> tuple[dict[str, Peer], dict[str, str]]:
    """Start the peers named; returns those running and, for the others, why not."""
    running, skipped = {}, {}
    for name in names:
        try:
            if name == "node":
                peer = start_node(work, stack)
            elif name == "dot":
                if not admin_url:
                    raise Unavailable("dot: needs PostgreSQL (run with the postgres backend)")
                peer = start_dot(work, stack, admin_url, options)
            else:
                raise Unavailable(f"{name}: unknown peer (known: {', '.join(KNOWN)})")
            try:
                peer.write_data(tokens)
            except (requests.RequestException, ValueError, KeyError) as error:
                raise Unavailable(f"{name}: asking for tokens failed: {error!r}") from error
            running[name] = peer
        except Unavailable as error:
            skipped[name] = str(error)
            print(f"[peers] skipped: {error}", flush=True)
    return running, skipped
