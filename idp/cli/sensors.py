"""``idp sensors``: people-counting sensors, and a simulator that plays one."""

from __future__ import annotations

import datetime as dt
import random

import click
import requests

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option
from idp.sensors import service


@click.group("sensors")
def group() -> None:
    """People-counting sensors (client_credentials clients with sensor_counts)."""


def _placement(location, lat, lon, area, retention_days, contact) -> service.Placement:
    return service.Placement(location=location, latitude=lat, longitude=lon, area=area or "",
                             retention_days=retention_days, contact=contact or "")


def _entry(sensor) -> dict:
    client = sensor.client
    return {"client_id": client.id, "name": client.name, "company_id": client.company_id,
            "company": client.company.name, "location": sensor.location,
            "latitude": sensor.latitude, "longitude": sensor.longitude, "area": sensor.area,
            "retention_days": sensor.retention_days, "contact": sensor.contact,
            "revoked": client.revoked_at is not None,
            "last_seen_at": sensor.last_seen_at.isoformat() if sensor.last_seen_at else None}


@group.command()
@click.option("--company", "company_id", required=True, help="Owning company id.")
@click.option("--name", required=True, help="The sensor's name, shown on /transparency.")
@click.option("--location", required=True, help="Where it stands (words).")
@click.option("--lat", type=float, default=None, help="Latitude (WGS 84), with --lon.")
@click.option("--lon", type=float, default=None, help="Longitude (WGS 84), with --lat.")
@click.option("--area", default="", help="The area it covers, in words.")
@click.option("--retention-days", default=365, show_default=True, type=int,
              help="How long its counts are kept, as told to the public.")
@click.option("--contact", default="", help="Whom the public asks (address or URL).")
@click.option("--purpose", default="", help="Purpose in Japanese (a default is given).")
@click.option("--purpose-en", default="", help="Purpose in English (a default is given).")
@json_option
@in_app
def create(company_id: str, name: str, location: str, lat: float | None, lon: float | None,
           area: str, retention_days: int, contact: str, purpose: str, purpose_en: str,
           as_json: bool) -> None:
    """Register a sensor: a confidential client_credentials client with sensor_counts."""
    client, secret, sensor = service.create_sensor(
        company_id, name, _placement(location, lat, lon, area, retention_days, contact),
        purpose=purpose, purpose_en=purpose_en, actor="cli")
    emit(as_json, {**_entry(sensor), "client_secret": secret},
         f"client_id: {client.id}\nclient_secret: {secret}\n(shown once; provision it on the "
         f"sensor at {sensor.location})")


@group.command("list")
@json_option
@in_app
def list_(as_json: bool) -> None:
    """Every sensor with its company and place."""
    emit_rows(as_json, "sensors", [_entry(s) for s in service.sensors()],
              lambda e: f"{e['client_id']}  {e['company']}  {e['name']}  {e['location']}"
                        + ("  (revoked)" if e["revoked"] else ""),
              "no sensors")


@group.command()
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True, envvar="IDP_SENSOR_CLIENT_SECRET")
@click.option("--issuer", default=None, help="Default: this installation's issuer.")
@click.option("--intervals", default=4, show_default=True, help="Intervals to post.")
@click.option("--interval-seconds", default=900, show_default=True, type=int)
@click.option("--seed", default=None, type=int, help="Random seed, for repeatable counts.")
@click.option("--resend", is_flag=True, help="Post the batch twice (the second replaces).")
@click.pass_obj
def simulate(ctx, client_id: str, client_secret: str, issuer: str | None, intervals: int,
             interval_seconds: int, seed: int | None, resend: bool) -> None:
    """Play a sensor: get a client_credentials token, post counts per direction."""
    issuer = (issuer or ctx.settings.issuer).rstrip("/")
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    response = requests.post(meta["token_endpoint"], auth=(client_id, client_secret),
                             timeout=10, data={"grant_type": "client_credentials",
                                               "scope": "sensor_counts"})
    if response.status_code != 200:
        raise click.ClickException(f"token request failed: {response.text}")
    token = response.json()["access_token"]
    rng = random.Random(seed)  # noqa: S311 - simulated counts, not secrets
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    last = now - dt.timedelta(seconds=now.timestamp() % interval_seconds)
    batch = {"counts": [
        {"interval_start": (last - dt.timedelta(seconds=interval_seconds * i)).isoformat(),
         "interval_seconds": interval_seconds, "direction": direction,
         "count": rng.randint(0, 120)}
        for i in range(intervals, 0, -1) for direction in ("in", "out")]}
    for _ in range(2 if resend else 1):
        stored = requests.post(f"{issuer}/api/sensor-counts", json=batch, timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        click.echo(stored.text.strip())
        if stored.status_code != 201:
            raise click.ClickException("posting sensor counts failed")
