"""The resident's choice to be left out of the city's statistics (seed 002: residents may
opt out of statistics).

``statistics_opt_out(resident)`` says whether they are out; ``set_statistics_opt_out``
records a change (audited). Exports filter on the column itself:
``opted_in()`` is the condition that keeps only residents who have not opted out, for a
``select(...).where(...)`` over ``Resident``. The choice takes effect from the moment it is
made: an export computed later leaves the resident out of every breakdown, whatever the
period it covers.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from idp.accounts.models import Resident
from idp.audit.service import record
from idp.audit.tags import AuditTag
from idp.db import utcnow

VIA = ("account", "registration")


def statistics_opt_out(resident: Resident) -> bool:
    """Whether the resident has asked to be left out of the city's statistics."""
    return resident.statistics_opt_out_at is not None


def set_statistics_opt_out(resident: Resident, opt_out: bool, via: str = "account") -> bool:
    """Record the resident's choice; returns whether it changed anything."""
    if via not in VIA:
        raise ValueError(f"via must be one of {', '.join(VIA)}")
    if opt_out == statistics_opt_out(resident):
        return False
    resident.statistics_opt_out_at = utcnow() if opt_out else None
    record(AuditTag.STATISTICS_OPT_OUT if opt_out else AuditTag.STATISTICS_OPT_IN,
           resident_id=resident.id, via=via)
    return True


def opted_in() -> ColumnElement[bool]:
    """The condition for residents who may appear in statistics (not opted out)."""
    return Resident.statistics_opt_out_at.is_(None)


def opted_out() -> ColumnElement[bool]:
    """The condition for residents who have opted out."""
    return Resident.statistics_opt_out_at.is_not(None)
