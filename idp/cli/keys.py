"""``idp keys``: ID token signing keys."""

from __future__ import annotations

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option
from idp.keys import service


@click.group("keys")
def group() -> None:
    """Signing keys."""


@group.command()
@click.option("--now", "immediately", is_flag=True,
              help="Sign with the new keys at once (emergency, e.g. a leaked key).")
@click.option("--drop-old", is_flag=True,
              help="A key is compromised: sign with new keys now and remove the old ones from "
                   "JWKS at once (ID tokens they signed stop verifying).")
@json_option
@in_app
def rotate(immediately: bool, drop_old: bool, as_json: bool) -> None:
    """Add new keys (RS256, ES256): published now, signing after the publish delay."""
    created = service.rotate(immediately=immediately, drop_old=drop_old, actor="cli")
    data = {"keys": [{"kid": k.kid, "alg": k.alg, "activates_at": k.activates_at.isoformat()}
                     for k in created]}
    emit(as_json, data, "\n".join(f"{k.alg} {k.kid} signs from {k.activates_at.isoformat()}"
                                  for k in created))


@group.command("list")
@json_option
@in_app
def list_keys(as_json: bool) -> None:
    """Every key with its state (published, active, retired, expired)."""
    rows = service.describe()
    emit_rows(as_json, "keys", rows, lambda r: f"{r['alg']} {r['kid']} {r['state']}",
              "no keys yet")


# A kid is a JWK thumbprint (RFC 7638, base64url): one in 64 starts with "-", which
# must still be read as the kid, not as an option.
@group.command(context_settings={"ignore_unknown_options": True})
@click.argument("kid")
@click.option("--drop", is_flag=True,
              help="The key is compromised: remove it from JWKS at once (its ID tokens stop "
                   "verifying).")
@json_option
@in_app
def retire(kid: str, drop: bool, as_json: bool) -> None:
    """Stop signing with one key now; a replacement signs at once if none is left."""
    replacement = service.retire(kid, drop=drop, actor="cli")
    emit(as_json, {"kid": kid, "dropped": drop,
                   "replacement": replacement.kid if replacement is not None else None},
         f"key {kid} retired" + (" and removed from JWKS" if drop else "")
         + (f"; {replacement.alg} {replacement.kid} signs now" if replacement else ""))
