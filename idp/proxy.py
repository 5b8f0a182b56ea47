"""Forwarded headers (X-Forwarded-For, -Proto, -Host): trusted from the proxy only.

werkzeug's ``ProxyFix`` trusts the last ``proxy_hops`` values of each header
*by position*: anyone who can reach a node directly can claim any client
address or scheme. With ``trusted_proxies`` set, a request's forwarded
headers count only when its direct peer (``REMOTE_ADDR``) is one of those
addresses or networks; from anywhere else they are removed before the app
sees them, so the scheme, host and client address are the connection's own.

Through a trusted peer, ``proxy_hops`` (at least 1) values are trusted, as
``ProxyFix`` does: 1 for a single nginx in front of the nodes.

``X-Request-ID`` (the proxy's id of the request, carried into the app's log
lines, ``idp.logs``) is trusted the same way: from a trusted peer, or by
position when only ``proxy_hops`` is set; with neither it is always removed
and the app makes its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Every header a proxy could use to speak for the client.
FORWARDED_HEADERS = (
    "HTTP_FORWARDED",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_REQUEST_ID",
)


def parse_networks(value: str) -> list[Network]:
    """``"127.0.0.1, 10.0.0.0/8, ::1"`` → networks; ValueError names a bad entry."""
    networks = []
    for item in (value or "").replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return networks


class TrustedProxies:
    """WSGI middleware: ``ProxyFix`` for requests from a trusted proxy, nothing for others."""

    def __init__(self, app, networks: Iterable[Network], hops: int = 1) -> None:
        self.app = app
        self.networks = tuple(networks)
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops)

    def trusted(self, address: str | None) -> bool:
        try:
            peer = ipaddress.ip_address((address or "").split("%", 1)[0])
        except ValueError:
            return False
        return any(peer in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        for key in FORWARDED_HEADERS:
            environ.pop(key, None)
        return self.app(environ, start_response)


class NoProxy:
    """WSGI middleware: no proxy is trusted, so no request may name its own request id."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        environ.pop("HTTP_X_REQUEST_ID", None)
        return self.app(environ, start_response)


def wrap(app, trusted_proxies: str, proxy_hops: int):
    """The app as the settings say: trust by source address, by position, or not at all."""
    networks = parse_networks(trusted_proxies)
    if networks:
        return TrustedProxies(app, networks, max(proxy_hops, 1))
    if proxy_hops:
        return ProxyFix(app, x_for=proxy_hops, x_proto=proxy_hops, x_host=proxy_hops)
    return NoProxy(app)
