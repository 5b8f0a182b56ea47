"""Several `idp serve` nodes behind nginx, the TLS-terminating reverse proxy.

    .venv/bin/python deploy/scale_out.py --nodes 2 \\
        --database-url postgresql://machi@db/machi_id --redis-url redis://127.0.0.1:6379/0

What it does, in a temporary directory it owns:

1. makes a self-signed certificate for 127.0.0.1/localhost (``cryptography``);
2. starts ``--nodes`` ``idp serve`` processes on free loopback ports, all with
   the same database, Redis, secret key and issuer
   (``https://127.0.0.1:<nginx port>``), ``IDP_TRUSTED_PROXIES=127.0.0.1`` and
   ``IDP_PROXY_HOPS=1``: forwarded headers count only when nginx sends them;
3. writes an nginx configuration: one TLS port balancing over every node
   (least connections, keep-alive upstream connections closed by nginx after 4 s
   idle, before the nodes close idle ones at IDP_SERVE_HEADER_TIMEOUT, 10 s) and, for tests and
   diagnostics, one TLS port per node that always goes to that node; nginx
   overwrites X-Forwarded-For with the address it sees, sets X-Forwarded-Proto,
   and sends the issuer's host as Host and X-Forwarded-Host whatever the client
   sent;
4. runs nginx in the foreground as its own process (``daemon off``), not as
   the system service, and waits until every port answers.

Other ``IDP_*`` variables of the environment (``IDP_ENVIRONMENT``,
``IDP_SMTP_URL``, rate limits …) pass through to the nodes. Ctrl-C stops
everything. ``tests/e2e/test_scale_out.py`` uses ``Cluster`` directly. Production
topology and sizing: docs/deploy.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_available() -> bool:
    return Path(NGINX).exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


PROXY_HEADERS = """
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The issuer's host whatever Host the client sent: absolute URLs the
            # app builds from the request (links in mail) cannot be pointed elsewhere.
            proxy_set_header Host {host};
            proxy_set_header X-Forwarded-Host {host};
            # The address nginx sees, never what the client claims.
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 60s;"""


def nginx_conf(work: Path, port: int, node_ports: list[int], pinned: list[int],
               cert: Path, key: Path) -> str:
    # least_conn: the node with the fewest requests in flight, not the next in turn. A
    # sign-in holds a worker for an argon2id hash (~170 ms) where a token takes 1 ms;
    # round robin kept sending a node its share while it hashed.
    upstreams = ["upstream idp_nodes {\n        least_conn;\n" + "".join(
        f"        server 127.0.0.1:{p} max_fails=0;\n" for p in node_ports)
        + "        keepalive 32;\n        keepalive_timeout 4s;\n    }"]
    host = f"127.0.0.1:{port}"
    servers = [_server(port, "idp_nodes", cert, key, host)]
    for i, (node_port, pin_port) in enumerate(zip(node_ports, pinned, strict=True)):
        upstreams.append(f"upstream idp_node_{i} {{\n        server 127.0.0.1:{node_port};\n"
                         "        keepalive 8;\n        keepalive_timeout 4s;\n    }")
        servers.append(_server(pin_port, f"idp_node_{i}", cert, key, host))
    temp = "\n".join(f"    {kind}_temp_path {work / 'nginx' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""# Generated by deploy/scale_out.py: nginx in the foreground, owned by the script.
daemon off;
worker_processes 1;
pid {work / 'nginx' / 'nginx.pid'};
error_log {work / 'nginx' / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {work / 'nginx' / 'access.log'};
{temp}
    server_tokens off;
    client_max_body_size 2m;
    {chr(10).join('    ' + u for u in upstreams).strip()}
    {chr(10).join('    ' + s for s in servers).strip()}
}}
"""


def _server(port: int, upstream: str, cert: Path, key: Path, host: str) -> str:
    return f"""server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://{upstream};{PROXY_HEADERS.format(host=host)}
        }}
    }}"""


@dataclass
class Cluster:
    """N nodes + nginx. Use as a context manager; ``url`` is the balanced issuer."""

    database_url: str
    redis_url: str
    nodes: int = 2
    port: int = 0
    secret_key: str = ""
    workers: int = 1
    env: dict[str, str] = field(default_factory=dict)
    work: Path | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.secret_key = self.secret_key or secrets.token_urlsafe(36)
        self.node_ports = [free_port() for _ in range(self.nodes)]
        self.pinned_ports = [free_port() for _ in range(self.nodes)]
        self.processes: list[subprocess.Popen] = []
        self._owned_work = self.work is None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def node_url(self, i: int) -> str:
        """Through nginx (TLS), always to node ``i``."""
        return f"https://127.0.0.1:{self.pinned_ports[i]}"

    def direct_url(self, i: int) -> str:
        """Node ``i`` itself, plain http, bypassing the proxy."""
        return f"http://127.0.0.1:{self.node_ports[i]}"

    @property
    def cert(self) -> Path:
        return self.work / "cert.pem"

    def node_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        env.update({
            "IDP_ISSUER": self.url,
            "IDP_SECRET_KEY": self.secret_key,
            "IDP_DATABASE_URL": self.database_url,
            "IDP_REDIS_URL": self.redis_url,
            "IDP_TRUSTED_PROXIES": "127.0.0.1",
            "IDP_PROXY_HOPS": "1",
            "IDP_GUNICORN_WORKERS": str(self.workers),
        })
        return env

    def start(self) -> Cluster:
        if self.work is None:
            self.work = Path(tempfile.mkdtemp(prefix="machi-scale-out-"))
        self.work.chmod(0o755)
        (self.work / "nginx").mkdir(exist_ok=True)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            path = self.work / "nginx" / kind
            path.mkdir(exist_ok=True)
            path.chmod(0o777)  # nginx's worker may run as another user when started by root
        cert, key = self_signed(self.work)
        idp = str(Path(sys.executable).parent / "idp")
        env = self.node_env()
        try:
            for i, port in enumerate(self.node_ports):
                log = (self.work / f"node-{i}.log").open("wb")
                self.processes.append(subprocess.Popen(
                    [idp, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            conf = self.work / "nginx" / "nginx.conf"
            conf.write_text(nginx_conf(self.work, self.port, self.node_ports, self.pinned_ports,
                                       cert, key))
            log = (self.work / "nginx" / "stderr.log").open("wb")
            self.processes.append(subprocess.Popen(
                [NGINX, "-p", str(self.work / "nginx"), "-c", str(conf), "-e",
                 str(self.work / "nginx" / "error.log")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = [self.url] + [self.node_url(i) for i in range(self.nodes)]
        while pending:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited ({process.returncode}); "
                                       f"logs in {self.work}:\n{self.logs()}")
            url = pending[0]
            try:
                response = requests.get(url + "/.well-known/openid-configuration",
                                        verify=str(self.cert), timeout=2)
                if response.status_code == 200:
                    pending.pop(0)
                    continue
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout} s; logs in {self.work}:\n"
                                   f"{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.work.glob("node-*.log")) + [self.work / "nginx" / "error.log"]:
            if path.exists():
                parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-2000:])
        return "\n".join(parts)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                # nginx: SIGQUIT is its graceful stop; idp serve (granian): SIGTERM.
                process.send_signal(signal.SIGQUIT if process.args[0] == NGINX else
                                    signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self._owned_work and self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get("IDP_DATABASE_URL"),
                        help="shared by every node (PostgreSQL); default IDP_DATABASE_URL")
    parser.add_argument("--redis-url", default=os.environ.get("IDP_REDIS_URL"),
                        help="shared rate limits; default IDP_REDIS_URL")
    parser.add_argument("--port", type=int, default=0, help="nginx's TLS port (default: free)")
    parser.add_argument("--workers", type=int, default=1, help="idp serve workers per node")
    parser.add_argument("--secret-key", default=os.environ.get("IDP_SECRET_KEY", ""),
                        help="the same on every node; default IDP_SECRET_KEY or a random one")
    args = parser.parse_args(argv)
    if not args.database_url or not args.redis_url:
        parser.error("--database-url and --redis-url are required (or IDP_DATABASE_URL and "
                     "IDP_REDIS_URL): the nodes share them")
    if not nginx_available():
        parser.error("nginx is missing: apt-get install -y nginx-light")
    cluster = Cluster(args.database_url, args.redis_url, nodes=args.nodes, port=args.port,
                      secret_key=args.secret_key, workers=args.workers)
    with cluster:
        print(json.dumps({"issuer": cluster.url, "certificate": str(cluster.cert),
                          "nodes": [cluster.direct_url(i) for i in range(cluster.nodes)],
                          "pinned": [cluster.node_url(i) for i in range(cluster.nodes)],
                          "work": str(cluster.work)}), flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop and all(p.poll() is None for p in cluster.processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
