"""``idp clients``: member companies' OAuth/OIDC clients."""

from __future__ import annotations

import json

import click

from idp.cli import emit
from idp.cli import in_app
from idp.clients import service


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
@click.option("--scope", "scopes", multiple=True, type=click.Choice(service.SCOPES),
              help="Scope the client may request (repeatable).")
@click.option("--purpose", default="", help="Purpose of use shown on consent (Japanese).")
@click.option("--purpose-en", default="", help="Purpose of use in English.")
@click.option("--policy-uri", default=None, help="The service's privacy policy URL.")
@click.option("--tos-uri", default=None, help="The service's terms URL.")
@click.option("--token-endpoint-auth-method", default=None,
              type=click.Choice(service.AUTH_METHODS))
@click.option("--jwks-file", type=click.File("r"), default=None,
              help="The client's public JWKS (for private_key_jwt).")
@click.option("--id-token-alg", default=None, type=click.Choice(service.ID_TOKEN_ALGS),
              help="ID token signing algorithm for this client.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@in_app
def create(company_id, name, redirect_uris, post_logout_redirect_uris, public, grant_types,
           scopes, purpose, purpose_en, policy_uri, tos_uri, token_endpoint_auth_method,
           jwks_file, id_token_alg, as_json) -> None:
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
        policy_uri=policy_uri, tos_uri=tos_uri,
        token_endpoint_auth_method=token_endpoint_auth_method,
        jwks=jwks, id_token_signed_response_alg=id_token_alg,
        actor="cli",
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@in_app
def revoke(client_id: str, as_json: bool) -> None:
    """Revoke a client for good: authentication and every token fail at once."""
    client = service.revoke_client(client_id, actor="cli")
    emit(as_json, {"client_id": client.id, "revoked_at": client.revoked_at.isoformat()},
         f"client {client.id} revoked")
