"""``idp users``: residents (consortium IDs)."""

from __future__ import annotations

import click

from idp.accounts import service
from idp.accounts.models import Gender
from idp.cli import emit
from idp.cli import in_app


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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
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
