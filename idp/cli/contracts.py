"""``idp contracts``: data-use contracts, which gate every contribution and release."""

from __future__ import annotations

import datetime as dt

import click

from idp.cli import emit
from idp.cli import emit_rows
from idp.cli import in_app
from idp.cli import json_option
from idp.exchange import contracts
from idp.exchange import lifecycle

DATE = click.DateTime(["%Y-%m-%d"])


@click.group("contracts")
def group() -> None:
    """Data-use contracts between the consortium and member companies."""


def describe(contract, today: dt.date | None = None) -> dict:
    today = today or contracts.today()
    status = ("ended" if contract.ended_at else "in_force" if contract.in_force(today)
              else "expired" if contract.valid_until < today else "not_yet")
    return {"id": contract.id, "company_id": contract.company_id,
            "company": contract.company.name, "categories": list(contract.categories),
            "purpose": contract.purpose, "retention_days": contract.retention_days,
            "liability": contract.liability, "audit_rights": contract.audit_rights,
            "breach_contact": contract.breach_contact,
            "valid_from": contract.valid_from.isoformat(),
            "valid_until": contract.valid_until.isoformat(), "status": status,
            "ended_at": contract.ended_at.isoformat() if contract.ended_at else None,
            "end_reason": contract.end_reason}


def _line(row: dict) -> str:
    return (f"{row['id']} {row['status']:<8} {row['company_id']} {row['company']} "
            f"{','.join(row['categories'])} {row['valid_from']}..{row['valid_until']}")


@group.command()
@click.option("--company", "company_id", required=True, help="The member company's id.")
@click.option("--category", "keys", multiple=True, required=True,
              help="A category the contract names (repeatable).")
@click.option("--purpose", required=True, help="Scope and purpose of use.")
@click.option("--valid-until", required=True, type=DATE, help="Last day, YYYY-MM-DD.")
@click.option("--valid-from", type=DATE, default=None, help="First day (default: today).")
@click.option("--retention-days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--liability", default="", help="Liability terms.")
@click.option("--audit-rights", default="", help="The consortium's audit rights.")
@click.option("--breach-contact", default="", help="Whom to notify of a breach.")
@json_option
@in_app
def create(company_id, keys, purpose, valid_until, valid_from, retention_days, liability,
           audit_rights, breach_contact, as_json) -> None:
    """Record a data-use contract naming categories."""
    contract = contracts.create(
        company_id, list(keys), purpose, valid_until=valid_until.date(),
        valid_from=valid_from.date() if valid_from else None, retention_days=retention_days,
        liability=liability, audit_rights=audit_rights, breach_contact=breach_contact,
        actor="cli")
    data = describe(contract)
    emit(as_json, data, f"created contract {contract.id}: {_line(data)}")


@group.command()
@click.argument("contract_id")
@click.option("--reason", default="ended by the consortium", show_default=True)
@json_option
@in_app
def end(contract_id: str, reason: str, as_json: bool) -> None:
    """End a contract now: its categories are refused to the company from now on, and the
    data links it alone allowed end (their services are told)."""
    contract, links = lifecycle.end_contract(contract_id, reason, actor="cli")
    data = {**describe(contract), "links_ended": links}
    emit(as_json, data, f"ended contract {contract.id}")


@group.command("list")
@click.option("--company", "company_id", default=None, help="Only this company's contracts.")
@json_option
@in_app
def list_contracts(company_id: str | None, as_json: bool) -> None:
    """Contracts, newest first (ended ones too)."""
    rows = [describe(c) for c in contracts.listing(company_id)]
    emit_rows(as_json, "contracts", rows, _line, "no contracts")
