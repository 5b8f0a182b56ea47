"""What the city-data tests share (tests/admin/test_city_export*.py, test_citydata_console.py,
test_operations_report.py): a day in November in Japan time, residents with a profile,
touches at a kiosk, and audit events of a month. The kiosk itself is the ``kiosk_id``
fixture of tests/admin/conftest.py."""

from __future__ import annotations

import datetime as dt

from freezegun import freeze_time

from idp.accounts import service as accounts
from idp.audit.service import record
from idp.extensions import db
from idp.kiosk.models import TouchEvent
from tests import factories

JST = dt.timezone(dt.timedelta(hours=9))
DAY = dt.date(2026, 11, 20)
AT = dt.datetime(2026, 11, 20, 10, 15, tzinfo=JST)
MID_NOVEMBER = "2026-11-15T03:00:00Z"


def residents(n, **profile):
    ids = []
    for _ in range(n):
        defaults = dict(birth_year=1990, gender="female", locality="札幌市中央区")
        defaults.update(profile)
        row = accounts.create_resident(f"r{len(ids)}-{factories.token(4)}@example.jp",
                                       factories.PASSWORD, accounts.Profile(**defaults))
        ids.append(row.id)
    db.session.commit()
    return ids


def touch(kiosk_id, resident_ids, at=AT, each=1):
    for resident_id in resident_ids:
        for _ in range(each):
            db.session.add(TouchEvent(client_id=kiosk_id, resident_id=resident_id,
                                      occurred_at=at, target="map"))
    db.session.commit()


def events(tag, n, *, resident=None, **ids):
    """n audit events of this tag in November, each by its own resident unless told."""
    with freeze_time(MID_NOVEMBER):
        for i in range(n):
            record(tag, resident_id=resident or f"r{i:03d}{factories.token(6)}"[:16], **ids)
    db.session.commit()
