"""``idp users``: residents (consortium IDs)."""

from __future__ import annotations

import click

from idp.accounts import service
from idp.accounts.models import Gender
from idp.cli import emit
from idp.cli import in_app
from idp.cli import json_option


@click.group("users")
def group() -> None:
    """Residents."""


@group.command()
@click.option("--email", required=True)
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--family-name")
@click.option("--given-name")
@click.option("--family-name-kana")
@click.option("--given-name-kana")
@click.option("--birth-year", type=int)
@click.option("--gender", type=click.Choice([g.value for g in Gender]))
@click.option("--postal-code", help="NNN-NNNN")
@click.option("--locality", help="Municipality (市区町村).")
@click.option("--email-verified", is_flag=True)
@json_option
@in_app
def create(email, password, family_name, given_name, family_name_kana, given_name_kana,
           birth_year, gender, postal_code, locality, email_verified, as_json) -> None:
    """Issue a consortium ID to a resident."""
    profile = service.Profile(
        family_name=family_name, given_name=given_name, family_name_kana=family_name_kana,
        given_name_kana=given_name_kana, birth_year=birth_year, gender=gender,
        postal_code=postal_code, locality=locality,
    )
    resident = service.create_resident(email, password, profile, email_verified=email_verified,
                                       actor="cli")
    emit(as_json, {"id": resident.id, "email": resident.email},
         f"created resident {resident.display_id} ({resident.email})")


def _resident(email: str):
    resident = service.find_by_email(email)
    if resident is None:
        raise service.ResidentError(f"no resident with email {email}")
    return resident


@group.command("reset-second-factor")
@click.option("--email", required=True)
@json_option
@in_app
def reset_second_factor(email: str, as_json: bool) -> None:
    """Turn off a resident's two-step verification (lost phone and recovery codes).

    Check the resident's identity out of band first: this removes a factor.
    """
    from idp.accounts import totp

    resident = _resident(email)
    totp.reset_by_operator(resident, actor="cli")
    emit(as_json, {"id": resident.id, "totp_enabled": False},
         f"two-step verification is off for {resident.display_id}")


@group.command("sign-out")
@click.option("--email", required=True)
@json_option
@in_app
def sign_out(email: str, as_json: bool) -> None:
    """End every browser session and revoke every token of a resident (a lost phone, a
    shared computer); services with a back-channel logout URI are told."""
    from idp.access import service as access

    resident = _resident(email)
    counts = access.sign_out_everywhere(resident, "admin", actor="cli")
    emit(as_json, {"id": resident.id, **counts},
         f"{resident.display_id}: {counts['sessions_ended']} session(s) ended, "
         f"{counts['tokens_revoked']} token(s) revoked")
