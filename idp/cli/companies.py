"""``idp companies``: consortium members, their contracts, suspension and exclusion."""

from __future__ import annotations

from collections.abc import Callable

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option
from idp.clients import service


@click.group("companies")
def group() -> None:
    """Member companies (the pairwise sectors)."""


def describe(company) -> dict:
    contract = company.contract
    return {
        "id": company.id,
        "name": company.name,
        "status": company.status,
        "created_at": company.created_at.isoformat(),
        "suspended_at": company.suspended_at.isoformat() if company.suspended_at else None,
        "revoked_at": company.revoked_at.isoformat() if company.revoked_at else None,
        "contract": {"reference": contract.reference, "version": contract.version,
                     "signed_on": contract.signed_on.isoformat()} if contract else None,
        "clients": [{"client_id": c.id, "name": c.name,
                     "status": "revoked" if c.revoked_at else
                     ("active" if c.is_active else "suspended")} for c in company.clients],
    }


@group.command()
@click.option("--name", required=True, help="The company's name as residents see it.")
@json_option
@in_app
def create(name: str, as_json: bool) -> None:
    """Admit a member company."""
    company = service.create_company(name, actor="cli")
    emit(as_json, {"id": company.id, "name": company.name, "status": company.status},
         f"created company {company.id} ({company.name})")


@group.command("list")
@json_option
@in_app
def list_companies(as_json: bool) -> None:
    """Every company with its status and contract."""
    rows = [describe(c) for c in service.list_companies()]
    emit_rows(as_json, "companies", rows, lambda r: f"{r['id']} {r['status']:<9} {r['name']}",
              "no companies")


@group.command()
@click.argument("company_id")
@json_option
@in_app
def show(company_id: str, as_json: bool) -> None:
    """One company: status, contract in force and clients."""
    data = describe(service.get_company(company_id))
    contract = data["contract"]
    lines = [f"{data['id']} {data['name']} ({data['status']})",
             f"contract: {contract['reference']} v{contract['version']} signed "
             f"{contract['signed_on']}" if contract else "contract: none recorded"]
    lines += [f"  {c['client_id']} {c['status']:<9} {c['name']}" for c in data["clients"]]
    emit(as_json, data, "\n".join(lines))


@group.command()
@click.argument("company_id")
@click.option("--name", required=True, help="The new name as residents see it.")
@json_option
@in_app
def rename(company_id: str, name: str, as_json: bool) -> None:
    """Change the company's name (shown on the consent screen at once)."""
    company = service.update_company(company_id, name, actor="cli")
    emit(as_json, {"id": company.id, "name": company.name}, f"company {company.id} is now "
                                                            f"{company.name}")


@group.command()
@click.argument("company_id")
@click.option("--reference", required=True, help="The signed contract's reference.")
@click.option("--version", "version", required=True, help="The contract text's version.")
@click.option("--signed-on", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Signing date, YYYY-MM-DD.")
@json_option
@in_app
def contract(company_id: str, reference: str, version: str, signed_on, as_json: bool) -> None:
    """Record the data-use contract the company signed (a renewal adds a new one)."""
    row = service.record_contract(company_id, reference, version, signed_on.date(), actor="cli")
    emit(as_json, {"id": company_id, "reference": row.reference, "version": row.version,
                   "signed_on": row.signed_on.isoformat()},
         f"contract {row.reference} v{row.version} recorded for {company_id}")


def _standing_command(name: str, change: Callable, doc: str) -> click.Command:
    """Suspension and reinstatement mirror each other: one command body for both."""

    @group.command(name, help=doc)
    @click.argument("company_id")
    @json_option
    @in_app
    def command(company_id: str, as_json: bool) -> None:
        company = change(company_id, actor="cli")
        emit(as_json, {"id": company.id, "status": company.status},
             f"company {company.id} is {company.status}")

    return command


suspend = _standing_command(
    "suspend", service.suspend_company,
    "Suspend a company: its clients and tokens stop working at once.")
reinstate = _standing_command(
    "reinstate", service.reinstate_company,
    "Lift a suspension: clients authenticate again; revoked tokens stay revoked.")


@group.command()
@click.argument("company_id")
@click.option("--yes", is_flag=True, help="Confirm: the exclusion cannot be undone.")
@json_option
@in_app
def revoke(company_id: str, yes: bool, as_json: bool) -> None:
    """Exclude a company for good: cut off, every client revoked, no way back."""
    if not yes:
        raise service.ClientError("revoking a company cannot be undone; add --yes to confirm")
    company = service.revoke_company(company_id, actor="cli")
    emit(as_json, {"id": company.id, "status": company.status,
                   "revoked_at": company.revoked_at.isoformat()},
         f"company {company.id} is revoked for good")
