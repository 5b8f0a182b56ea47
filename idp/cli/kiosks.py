"""``idp kiosks``: signage screens, and a simulator that plays one."""

from __future__ import annotations

import datetime as dt
import time

import click
import qrcode
import requests

from idp.cli import emit
from idp.cli import in_app
from idp.cli import json_option
from idp.kiosk import service

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@click.group("kiosks")
def group() -> None:
    """Digital-signage kiosks (RFC 8628 device-flow clients)."""


@group.command()
@click.option("--company", "company_id", required=True, help="Owning company id.")
@click.option("--name", required=True, help="The kiosk's service name, shown on consent.")
@click.option("--location", required=True, help="Where the screen stands.")
@click.option("--lat", type=float, default=None, help="Latitude (WGS 84), with --lon: the "
                                                     "transparency page's map.")
@click.option("--lon", type=float, default=None, help="Longitude (WGS 84), with --lat.")
@click.option("--contact", default="", help="Whom the public asks (shown on /transparency).")
@json_option
@in_app
def create(company_id: str, name: str, location: str, lat: float | None, lon: float | None,
           contact: str, as_json: bool) -> None:
    """Register a kiosk: a confidential device_code + client_credentials client."""
    client, secret, kiosk = service.create_kiosk(company_id, name, location, actor="cli",
                                                 latitude=lat, longitude=lon, contact=contact)
    emit(as_json, {"client_id": client.id, "client_secret": secret, "location": kiosk.location,
                   "latitude": kiosk.latitude, "longitude": kiosk.longitude,
                   "transparency": f"/transparency#kiosk-{client.id}"},
         f"client_id: {client.id}\nclient_secret: {secret}\n(shown once; provision it on the "
         f"kiosk at {kiosk.location})")


@group.command()
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True, envvar="IDP_KIOSK_CLIENT_SECRET")
@click.option("--issuer", default=None, help="Default: this installation's issuer.")
@click.option("--events", default=3, show_default=True, help="Touch events to post.")
@click.option("--timeout", default=600, show_default=True, help="Give up after seconds.")
@click.pass_obj
def simulate(ctx, client_id: str, client_secret: str, issuer: str | None, events: int,
             timeout: int) -> None:
    """Play a kiosk: show a QR code, poll until a resident approves, post touch events,
    then end the resident's session by revoking the token at /revoke."""
    issuer = (issuer or ctx.settings.issuer).rstrip("/")
    http = requests.Session()
    http.auth = (client_id, client_secret)
    meta = http.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    response = http.post(meta["device_authorization_endpoint"],
                         data={"scope": "openid touch_events"}, timeout=10)
    if response.status_code != 200:
        raise click.ClickException(f"device authorization failed: {response.text}")
    grant = response.json()
    qr = qrcode.QRCode(border=1)
    qr.add_data(grant["verification_uri_complete"])
    qr.print_ascii(invert=True)
    click.echo(f"\nScan the QR code, or open {grant['verification_uri_complete']}\n"
               f"(or open {grant['verification_uri']} and enter {grant['user_code']})\n")
    interval = grant["interval"]
    deadline = time.monotonic() + min(timeout, grant["expires_in"])
    while True:
        if time.monotonic() > deadline:
            raise click.ClickException("gave up waiting for the resident")
        time.sleep(interval)
        token = http.post(meta["token_endpoint"], timeout=10, data={
            "grant_type": DEVICE_GRANT, "device_code": grant["device_code"]}).json()
        error = token.get("error")
        if error == "authorization_pending":
            click.echo("waiting for the resident…", err=True)
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error:
            raise click.ClickException(f"{error}: {token.get('error_description', '')}")
        break
    approved = dt.datetime.now(dt.UTC)
    click.echo(f"approved: scope {token['scope']!r}", err=True)
    # Touches by the resident happen after the approval (the API refuses earlier ones).
    now = dt.datetime.now(dt.UTC)
    batch = {"events": [
        {"occurred_at": (approved + (now - approved) * i / max(events, 1)).isoformat(),
         "target": f"content-{i + 1}", "event_id": f"sim-{int(now.timestamp())}-{i}"}
        for i in range(events)]}
    # Plain requests: the session would put its Basic credentials over the Bearer token.
    stored = requests.post(f"{issuer}/api/touch-events", json=batch, timeout=10,
                           headers={"Authorization": f"Bearer {token['access_token']}"})
    click.echo(stored.text.strip())
    # The resident is done: the kiosk revokes their token (RFC 7009) before the next person.
    revoked = http.post(meta["revocation_endpoint"], timeout=10, data={
        "token": token["access_token"], "token_type_hint": "access_token"})
    click.echo(f"session ended: token revoked (HTTP {revoked.status_code})", err=True)
    if stored.status_code != 201:
        raise click.ClickException("posting touch events failed")
