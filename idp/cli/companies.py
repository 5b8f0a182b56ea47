"""``idp companies``: consortium members."""

from __future__ import annotations

import click

from idp.cli import emit
from idp.cli import in_app
from idp.clients import service


@click.group("companies")
def group() -> None:
    """Member companies (the pairwise sectors)."""


@group.command()
@click.option("--name", required=True, help="The company's name as residents see it.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@in_app
def create(name: str, as_json: bool) -> None:
    """Admit a member company."""
    company = service.create_company(name, actor="cli")
    emit(as_json, {"id": company.id, "name": company.name, "status": company.status},
         f"created company {company.id} ({company.name})")


@group.command()
@click.argument("company_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@in_app
def suspend(company_id: str, as_json: bool) -> None:
    """Suspend a company: its clients and tokens stop working at once."""
    company = service.suspend_company(company_id, actor="cli")
    emit(as_json, {"id": company.id, "status": company.status},
         f"company {company.id} is {company.status}")
