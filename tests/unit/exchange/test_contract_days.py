"""A data-use contract's dates are days in Japan, the consortium's days: one whose last
day is 2026-12-03 is in force until midnight Japan time (15:00 UTC), not until midnight
UTC (09:00 the next morning in Japan); one starting on 2026-12-04 is in force from
midnight Japan time."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from idp.exchange import categories
from idp.exchange import contracts
from idp.extensions import db
from tests import factories

LAST_DAY = dt.date(2026, 12, 3)


@pytest.fixture
def company(app):
    categories.ensure_defaults()
    company_id = factories.company("A社")
    with freeze_time("2026-11-01 00:00:00"):
        contracts.create(company_id, ["language"], "言語設定の提供",
                         valid_from=dt.date(2026, 11, 1), valid_until=LAST_DAY)
        contracts.create(company_id, ["household"], "世帯情報の提供",
                         valid_from=LAST_DAY + dt.timedelta(days=1),
                         valid_until=dt.date(2027, 12, 3))
    db.session.commit()
    return company_id


@pytest.mark.parametrize(("utc", "language", "household"), [
    ("2026-12-03 14:59:59", True, False),   # 23:59:59 on the last day, in Japan
    ("2026-12-03 15:00:00", False, True),   # 00:00 on 2026-12-04 in Japan
    ("2026-12-03 23:59:59", False, True),   # still 2026-12-03 in UTC
])
def test_contract_days_turn_at_midnight_in_japan(company, utc, language, household):
    """Test that in_force and its refusal turn at midnight Japan time, whatever UTC's date."""
    with freeze_time(utc):
        assert (contracts.in_force(company, "language") is not None) is language
        assert (contracts.in_force(company, "household") is not None) is household
        if not language:
            with pytest.raises(contracts.ContractRefused) as refused:
                contracts.require(company, "language")
            assert "has expired" in refused.value.reason
        if not household:
            with pytest.raises(contracts.ContractRefused) as refused:
                contracts.require(company, "household")
            assert "is not in force yet" in refused.value.reason
