"""``idp clients``: member companies' OAuth/OIDC clients."""

from __future__ import annotations

import json

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option
from idp.clients import service
from idp.security.algorithms import SIGNING_ALGS


class ScopeChoice(click.Choice):
    """Our fixed scopes, or a family's ``prefix:value`` (``contribute:language``,
    ``registered:language``): those depend on the database, so registration checks
    them (unknown category, no data-use contract in force)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and ":" in value and " " not in value:
            return value
        return super().convert(value, param, ctx)


SCOPE = ScopeChoice(service.SCOPES)


@click.group("clients")
def group() -> None:
    """OAuth/OIDC clients."""


@group.command()
@click.option("--company", "company_id", required=True, help="Owning company id.")
@click.option("--name", required=True, help="Service name shown on the consent screen.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Exact redirect URI (repeatable). Required with authorization_code.")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
              help="Where RP-initiated logout may return (repeatable).")
@click.option("--public", is_flag=True, help="A public client (no secret; PKCE required).")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(service.GRANT_TYPES), help="Grant type (repeatable).")
@click.option("--scope", "scopes", multiple=True, type=SCOPE,
              help="Scope the client may request (repeatable).")
@click.option("--purpose", default="", help="Purpose of use shown on consent (Japanese).")
@click.option("--purpose-en", default="", help="Purpose of use in English.")
@click.option("--client-uri", default=None, help="The service's home page URL.")
@click.option("--policy-uri", default=None, help="The service's privacy policy URL.")
@click.option("--tos-uri", default=None, help="The service's terms URL.")
@click.option("--token-endpoint-auth-method", default=None,
              type=click.Choice(service.AUTH_METHODS))
@click.option("--jwks-file", type=click.File("r"), default=None,
              help="The client's public JWKS (for private_key_jwt).")
@click.option("--id-token-alg", default=None, type=click.Choice(SIGNING_ALGS),
              help="ID token signing algorithm for this client.")
@click.option("--backchannel-logout-uri", default=None,
              help="Where OIDC back-channel logout tokens are POSTed.")
@click.option("--event-receiver-uri", default=None,
              help="Where Security Event Tokens are pushed (RFC 8935; docs/security-events.md).")
@click.option("--verified-claims", is_flag=True,
              help="The client may receive verified_claims (with the resident's consent).")
@json_option
@in_app
def create(company_id, name, redirect_uris, post_logout_redirect_uris, public, grant_types,
           scopes, purpose, purpose_en, client_uri, policy_uri, tos_uri, token_endpoint_auth_method,
           jwks_file, id_token_alg, backchannel_logout_uri, event_receiver_uri, verified_claims,
           as_json) -> None:
    """Register a client. The secret is printed once and stored only as a digest."""
    jwks = json.load(jwks_file) if jwks_file else None
    client, secret = service.register_client(
        company_id, name,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        public=public,
        grant_types=list(grant_types) or None,
        scopes=list(scopes) or None,
        purpose=purpose, purpose_en=purpose_en,
        client_uri=client_uri, policy_uri=policy_uri, tos_uri=tos_uri,
        token_endpoint_auth_method=token_endpoint_auth_method,
        jwks=jwks, id_token_signed_response_alg=id_token_alg,
        backchannel_logout_uri=backchannel_logout_uri, event_receiver_uri=event_receiver_uri,
        verified_claims_allowed=verified_claims, actor="cli",
    )
    data = {"client_id": client.id}
    if secret:
        data["client_secret"] = secret
    text = f"client_id: {client.id}"
    if secret:
        text += f"\nclient_secret: {secret}\n(shown once; store it now)"
    emit(as_json, data, text)


@group.command()
@click.argument("client_id")
@json_option
@in_app
def revoke(client_id: str, as_json: bool) -> None:
    """Revoke a client for good: authentication and every token fail at once."""
    client = service.revoke_client(client_id, actor="cli")
    emit(as_json, {"client_id": client.id, "revoked_at": client.revoked_at.isoformat()},
         f"client {client.id} revoked")


def describe(client) -> dict:
    settings = service.settings_of(client)
    return {
        "client_id": client.id,
        "company_id": client.company_id,
        "status": "revoked" if client.revoked_at else
        ("active" if client.is_active else "suspended"),
        "public": client.is_public,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        **vars(settings),
        "created_at": client.created_at.isoformat(),
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
    }


@group.command("list")
@click.option("--company", "company_id", default=None, help="Only this company's clients.")
@json_option
@in_app
def list_clients(company_id: str | None, as_json: bool) -> None:
    """Every client (of one company), with its state."""
    rows = [describe(c) for c in service.list_clients(company_id)]
    emit_rows(as_json, "clients", rows,
              lambda r: f"{r['client_id']} {r['status']:<9} {r['company_id']} {r['name']}",
              "no clients")


@group.command()
@click.argument("client_id")
@json_option
@in_app
def show(client_id: str, as_json: bool) -> None:
    """One client's settings and state (never its secret, which is not stored)."""
    data = describe(service.get_client(client_id))
    emit(as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


@group.command()
@click.argument("client_id")
@click.option("--name", default=None, help="Service name shown on the consent screen.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="Replaces every redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
              help="Replaces every post-logout redirect URI (repeatable).")
@click.option("--no-post-logout-redirect-uris", is_flag=True,
              help="Remove every post-logout redirect URI.")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(service.GRANT_TYPES), help="Replaces the grant types.")
@click.option("--scope", "scopes", multiple=True, type=SCOPE,
              help="Replaces the scopes the client may request.")
@click.option("--purpose", default=None, help="Purpose of use (Japanese).")
@click.option("--purpose-en", default=None, help="Purpose of use (English).")
@click.option("--client-uri", default=None, help="Home page URL ('' removes it).")
@click.option("--policy-uri", default=None, help="Privacy policy URL ('' removes it).")
@click.option("--tos-uri", default=None, help="Terms URL ('' removes it).")
@click.option("--backchannel-logout-uri", default=None,
              help="Back-channel logout URI ('' removes it).")
@click.option("--event-receiver-uri", default=None,
              help="Security event receiver URI, RFC 8935 push ('' removes it).")
@click.option("--verified-claims/--no-verified-claims", default=None,
              help="Whether the client may receive verified_claims.")
@json_option
@in_app
def update(client_id, name, redirect_uris, post_logout_redirect_uris,
           no_post_logout_redirect_uris, grant_types, scopes, purpose, purpose_en, client_uri,
           policy_uri, tos_uri, backchannel_logout_uri, event_receiver_uri, verified_claims,
           as_json) -> None:
    """Change a client's settings; what is not given stays. Removing a scope revokes
    the tokens that carry it; removing a redirect URI or grant expires pending codes."""
    settings = service.settings_of(service.get_client(client_id))
    given = {
        "name": name, "purpose": purpose, "purpose_en": purpose_en, "client_uri": client_uri,
        "policy_uri": policy_uri,
        "tos_uri": tos_uri, "backchannel_logout_uri": backchannel_logout_uri,
        "event_receiver_uri": event_receiver_uri,
        "verified_claims_allowed": verified_claims,
        "redirect_uris": list(redirect_uris) or None,
        "post_logout_redirect_uris": [] if no_post_logout_redirect_uris
        else (list(post_logout_redirect_uris) or None),
        "grant_types": list(grant_types) or None, "scopes": list(scopes) or None,
    }
    for key, value in given.items():
        if value is not None:
            setattr(settings, key, value)
    client, changes = service.update_client(client_id, settings, actor="cli")
    emit(as_json, {"client_id": client.id, "changed": sorted(changes)},
         f"client {client.id}: " + (", ".join(sorted(changes)) + " changed" if changes
                                     else "nothing changed"))


@group.command("rotate-secret")
@click.argument("client_id")
@click.option("--revoke-tokens", is_flag=True,
              help="Also revoke every token of the client (the old secret leaked).")
@json_option
@in_app
def rotate_secret(client_id: str, revoke_tokens: bool, as_json: bool) -> None:
    """A new client secret, printed once; the old one stops working at once."""
    client, secret = service.rotate_secret(client_id, revoke_tokens=revoke_tokens, actor="cli")
    emit(as_json, {"client_id": client.id, "client_secret": secret},
         f"client_id: {client.id}\nclient_secret: {secret}\n(shown once; store it now)")
