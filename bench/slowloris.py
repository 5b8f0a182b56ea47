"""Does `idp serve` still answer while slow clients hold connections open?

Starts `idp serve` on a free loopback port (SQLite, development settings), opens
``--connections`` connections that send a request line and then one header byte
every ``--interval`` seconds without ever finishing the headers (slowloris), for
``--duration`` seconds, and meanwhile sends a normal request (discovery) every
0.25 s with a 10 s timeout. Prints how many normal requests were answered and
their latency. Everything stays on 127.0.0.1 and ends after ``--duration``.

    .venv/bin/python -m bench.slowloris --connections 50 --duration 30
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.servers import clean_environ
from bench.servers import free_port
from bench.servers import start_idp

PATH = "/.well-known/openid-configuration"


def slow_clients(port: int, count: int, interval: float, stop: threading.Event) -> list[int]:
    """Hold ``count`` connections, each trickling header bytes; returns how many were
    still open (not closed by the server) at the end."""
    sockets = []
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{i}: ".encode())
        sockets.append(sock)
    open_at_end = []
    while not stop.wait(interval):
        for sock in list(sockets):
            try:
                sock.sendall(b"a")
            except OSError:
                sockets.remove(sock)
    for sock in sockets:
        try:
            sock.sendall(b"a")
            open_at_end.append(1)
        except OSError:
            pass
        sock.close()
    return open_at_end


def measure(url: str, duration: float) -> tuple[list[float], int]:
    latencies, failures = [], 0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            response = requests.get(url + PATH, timeout=10)
            response.raise_for_status()
            latencies.append(time.monotonic() - start)
        except requests.RequestException:
            failures += 1
        time.sleep(0.25)
    return latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--interval", type=float, default=2)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = clean_environ({"IDP_DATABASE_URL": f"sqlite:///{tmp}/slowloris.sqlite3",
                             "IDP_ISSUER": f"http://127.0.0.1:{port}"})
        server = start_idp(env, port, Path(tmp) / "serve.log")
        try:
            before, _ = measure(server.url, 2)
            stop = threading.Event()
            result: dict[str, list[int]] = {}
            attacker = threading.Thread(target=lambda: result.setdefault(
                "open", slow_clients(port, args.connections, args.interval, stop)))
            attacker.start()
            time.sleep(1)  # all slow connections are open before we measure
            during, failures = measure(server.url, args.duration)
            stop.set()
            attacker.join()
        finally:
            server.stop()
    def ms(values, q):
        return round(1000 * statistics.quantiles(values, n=100)[q - 1], 1) if len(values) > 1 \
            else None
    print(f"before:  {len(before)} answered, p50 {ms(before, 50)} ms")
    print(f"during:  {len(during)} answered, {failures} unanswered (10 s timeout), "
          f"p50 {ms(during, 50)} ms, p95 {ms(during, 95)} ms, "
          f"max {round(1000 * max(during), 1) if during else None} ms")
    print(f"slow connections still open at the end: {len(result.get('open', []))} of "
          f"{args.connections}")


if __name__ == "__main__":
    main()
