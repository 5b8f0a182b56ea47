"""Processes the benchmark owns: the databases, `idp serve`, the hello app, and
reading their workers' memory from /proc."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A database of our own on the server behind ``admin_url``; dropped afterwards."""
    name = f"machi_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(admin_url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def settle(database_url: str) -> None:
    """Bring a freshly seeded PostgreSQL database to the state a running one is in
    before anything is measured: the planner's statistics of the new rows, their
    visibility map, and the seed's dirty pages written out. Without it, autovacuum's
    analyze and the checkpoint of tens of thousands of seeded rows ran during the first
    scenarios and showed as their latency (the token endpoint's p99 at 64 connections:
    101 ms in the main table, 63-72 ms in the rounds with the peers minutes later)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
        connection.execute("CHECKPOINT")


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any IDP_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(extra)
    return env


class Server:
    """A server we started (``idp serve`` or bench/hello.py, granian) and its workers."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path,
                 ready_path: str, cwd: Path = ROOT) -> None:
        self.port = port
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(ready_path)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                response = requests.get(self.url + path, timeout=2,
                                        headers={"X-Forwarded-Proto": "https"})
                if response.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s; see {self.log}")

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def worker_rss_mb(self) -> float:
        """The largest resident set among the workers (a single-process server: its
        own), in MB."""
        sizes = [rss_kb(pid) for pid in self.workers() or [self.process.pid]]
        return round(max(sizes, default=0) / 1024, 1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # The whole session: workers must not outlive a master killed here.
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log_file.close()


class Group:
    """Several servers measured as one (the nodes behind nginx in scale-out): the
    masters and all their workers are "the server" for CPU and memory."""

    def __init__(self, processes: list[subprocess.Popen]) -> None:
        self.process = processes[0]
        self._processes = processes

    def workers(self) -> list[int]:
        return [p.pid for p in self._processes[1:]] + [
            c for p in self._processes for c in children(p.pid)]

    def worker_rss_mb(self) -> float:
        sizes = [rss_kb(pid) for pid in self.workers()]
        return round(max(sizes, default=0) / 1024, 1)


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")
# Processes that are part of a measurement: the load generator, the database,
# Redis (and nginx in scale-out, counted with the load generator). Anything
# else burning CPU meanwhile (another job on the machine) is "foreign" and
# makes the figures pessimistic; the report shows how much.
OURS = {"wrk", "postgres", "redis-server", "py-spy", "nginx"}


def cpu_snapshot() -> dict[int, tuple[str, int]]:
    """CPU ticks used so far by every process: pid → (name, utime + stime).

    PostgreSQL backends are named by their process title, so the database's
    share can be told apart from other databases' on the same server.
    """
    snapshot = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            if name == "postgres":
                name = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace").strip() or name
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        snapshot[int(stat.parent.name)] = (name, int(fields[11]) + int(fields[12]))
    return snapshot


def wait_idle(server, window: float = 0.5, busy: float = 0.05, timeout: float = 60) -> float:
    """Wait until ``server``'s processes use less than ``busy`` of a core over ``window``
    seconds: after wrk stops, a server may still be answering what was queued (sign-ins
    at 64 connections queue seconds of argon2). Returns the seconds waited."""
    began = time.monotonic()
    own = {server.process.pid, *server.workers()}

    def ticks() -> int:
        return sum(t for pid, (_, t) in cpu_snapshot().items() if pid in own)

    last = ticks()
    while time.monotonic() - began < timeout:
        time.sleep(window)
        now = ticks()
        if (now - last) / CLK_TCK < busy * window:
            break
        last = now
    return round(time.monotonic() - began, 1)


def cpu_used(before: dict, after: dict, own: set[int], database: str = "") -> dict[str, float]:
    """CPU seconds used between two snapshots: by the server (``own`` pids), the
    database (backends connected to ``database`` and the server's background
    processes), Redis, the load generator, and everything else ("foreign")."""
    used = dict.fromkeys(("server", "postgres", "redis", "wrk", "foreign"), 0.0)
    for pid, (name, ticks) in after.items():
        if pid == os.getpid():
            continue
        delta = (ticks - before.get(pid, (name, 0))[1]) / CLK_TCK
        if pid in own:
            used["server"] += delta
        elif name.startswith("postgres"):
            backend = "127.0.0.1(" in name or "[local]" in name
            ours = not backend or (database and f" {database} " in name)
            used["postgres" if ours else "foreign"] += delta
        elif name.startswith("redis"):
            used["redis"] += delta
        elif name in OURS:
            used["wrk"] += delta
        else:
            used["foreign"] += delta
    return used


def renice(pids, value: int) -> None:
    """Set the scheduling priority of processes the measurement runs on."""
    for pid in pids:
        with suppress(OSError):  # the process may have exited meanwhile
            os.setpriority(os.PRIO_PROCESS, pid, value)


def database_backends(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their process title names it)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {database} " in title:
            pids.append(int(cmdline.parent.name))
    return pids


def start_idp(env: dict[str, str], port: int, log: Path) -> Server:
    return Server([str(VENV_BIN / "idp"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                  env, port, log, "/.well-known/openid-configuration")


def start_gunicorn(env: dict[str, str], port: int, log: Path, worker_class: str,
                   options: dict) -> Server:
    """``idp serve``'s app under gunicorn (``--servers``): the same factory, workers,
    threads (gthread) and keep-alive as the granian settings in ``options``."""
    argv = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}",
            "--workers", str(options["workers"]), "--worker-class", worker_class,
            "--keep-alive", str(options["keep_alive_s"]), "--log-level", "warning",
            "idp.cli.serve:served_app()"]
    if worker_class == "gthread":
        argv[-1:-1] = ["--threads", str(options["threads"])]
    return Server(argv, env, port, log, "/.well-known/openid-configuration")


def start_hello(env: dict[str, str], port: int, log: Path) -> Server:
    return Server([sys.executable, str(ROOT / "bench" / "hello.py"), str(port)],
                  env, port, log, "/")
