"""`idp serve` keeps answering while slow clients hold connections (slowloris).

Under gunicorn's gthread worker, a connection that sent part of its headers held
a worker thread until it finished; 2 workers × 4 threads meant eight such
connections left the node answering nothing. Here 50 connections stop halfway
through their headers, and a normal request must still be answered. Only
loopback, bounded waits; how fast is not asserted (bench/slowloris.py measures).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests

SLOW_CONNECTIONS = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_normal_request_is_answered_while_slow_clients_hold_connections(tmp_path):
    """Test that 50 connections stuck in their headers do not stop `idp serve` answering."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({"IDP_DATABASE_URL": f"sqlite:///{tmp_path}/serve.sqlite3",
                "IDP_ISSUER": base, "IDP_ENVIRONMENT": "development",
                "IDP_GUNICORN_WORKERS": "2", "IDP_GUNICORN_THREADS": "4",
                # Long enough that the server's header timeout does not rescue it:
                # the slow clients must simply not hold the threads.
                "IDP_SERVE_HEADER_TIMEOUT": "120"})
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "idp.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    slow: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "idp serve exited"
            try:
                if requests.get(base + "/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "idp serve did not start"
            time.sleep(0.2)
        for i in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /.well-known/openid-configuration HTTP/1.1\r\n"
                         b"Host: 127.0.0.1\r\nX-Slow-" + str(i).encode() + b": ")
            slow.append(sock)
        time.sleep(1)  # every slow connection has reached the server
        response = requests.get(base + "/.well-known/openid-configuration", timeout=20)
        assert response.status_code == 200
        assert response.json()["issuer"] == base
    finally:
        for sock in slow:
            sock.close()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
