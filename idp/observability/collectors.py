"""The gauges computed when ``/metrics`` is scraped: they read the database, so every worker
reports the same values and none keeps them in memory (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy import select

from idp import metrics
from idp.audit import chain
from idp.db import utcnow
from idp.extensions import db
from idp.keys.models import KeyState
from idp.keys.models import SigningKey
from idp.outbox.models import DEAD
from idp.outbox.models import PENDING
from idp.outbox.models import OutboxMessage

# Kinds always reported, so a panel or an alert sees 0 rather than no series.
OUTBOX_KINDS = ("backchannel_logout", "security_event", "mail")
KEY_STATES = (KeyState.PUBLISHED, KeyState.ACTIVE, KeyState.RETIRED)


def _kind(value: str) -> str:
    return value if value in OUTBOX_KINDS else metrics.OTHER


class DatabaseGauges(Collector):
    """Outbox depth, age and dead letters; signing keys by algorithm and state; the audit
    trail's sealing lag."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = utcnow()
        yield from self._outbox(now)
        yield from self._keys(now)
        yield from self._audit(now)

    def _audit(self, now) -> Iterator[GaugeMetricFamily]:
        tail = chain.unsealed(db.session)
        lag = GaugeMetricFamily(metrics.PREFIX + "audit_sealing_lag_seconds",
                                "Age of the oldest committed audit event not yet sealed into "
                                "the chain (0 when all are sealed).")
        lag.add_metric([], tail.age(now))
        unsealed = GaugeMetricFamily(metrics.PREFIX + "audit_unsealed_events",
                                     "Committed audit events not yet sealed into the chain.")
        unsealed.add_metric([], tail.count)
        yield from (lag, unsealed)

    def _outbox(self, now) -> Iterator[GaugeMetricFamily]:
        pending = GaugeMetricFamily(metrics.PREFIX + "outbox_pending",
                                    "Messages waiting for delivery.", labels=["kind"])
        oldest = GaugeMetricFamily(metrics.PREFIX + "outbox_oldest_pending_age_seconds",
                                   "Age of the oldest waiting message.", labels=["kind"])
        dead = GaugeMetricFamily(metrics.PREFIX + "outbox_dead", "Dead letters stored.",
                                 labels=["kind"])
        counts: dict[str, list[float]] = {kind: [0, 0.0, 0] for kind in OUTBOX_KINDS}
        rows = db.session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, func.count(),
                   func.min(OutboxMessage.created_at))
            .where(OutboxMessage.status.in_([PENDING, DEAD]))
            .group_by(OutboxMessage.kind, OutboxMessage.status))
        for kind, status, count, first in rows:
            values = counts.setdefault(_kind(kind), [0, 0.0, 0])
            if status == PENDING:
                values[0] += count
                if first is not None:
                    values[1] = max(values[1], (now - _aware(first, now)).total_seconds())
            else:
                values[2] += count
        for kind, (waiting, age, given_up) in sorted(counts.items()):
            pending.add_metric([kind], waiting)
            oldest.add_metric([kind], max(age, 0.0))
            dead.add_metric([kind], given_up)
        yield from (pending, oldest, dead)

    def _keys(self, now) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(metrics.PREFIX + "signing_key_age_seconds",
                                "Age of the newest key of each algorithm and state.",
                                labels=["alg", "state"])
        number = GaugeMetricFamily(metrics.PREFIX + "signing_keys",
                                   "Keys of each algorithm and state.", labels=["alg", "state"])
        newest: dict[tuple[str, str], float] = {}
        counts: dict[tuple[str, str], int] = {}
        for key in db.session.scalars(select(SigningKey)):
            state = key.state(now)
            if state not in KEY_STATES:
                continue
            labels = (key.alg, str(state))
            counts[labels] = counts.get(labels, 0) + 1
            seconds = (now - _aware(key.created_at, now)).total_seconds()
            newest[labels] = min(newest.get(labels, seconds), seconds)
        for alg in sorted({alg for alg, _ in counts}):
            for state in KEY_STATES:
                number.add_metric([alg, str(state)], counts.get((alg, str(state)), 0))
        for (alg, state), seconds in sorted(newest.items()):
            age.add_metric([alg, state], max(seconds, 0.0))
        yield from (age, number)


def _aware(value, now):
    # SQLite gives naive datetimes back; they are UTC (idp.db).
    return value.replace(tzinfo=now.tzinfo) if value.tzinfo is None else value
