"""What one batch of 100 touches costs PostgreSQL, in the shapes a batch could be stored in.

``bench/run.py`` measures a batch end to end, with the server, wrk and PostgreSQL sharing
two cores. This measures PostgreSQL's part alone: the CPU time of the database backend
that stores the batches (read from ``/proc``), one batch per transaction, with the schema
the migrations make (``idp db upgrade``: its four indexes and its foreign key to
``residents``), for:

- ``on_conflict``: the JSON batch expanded by ``json_array_elements`` with ``ON CONFLICT
  (client_id, event_id) DO NOTHING`` (every batch, before issue 16's last step);
- ``plain``: the same without ``ON CONFLICT`` (``idp.db.insert_new``: every batch that
  meets no touch already stored);
- ``plain_full_index``: ``plain`` with ``resident_id`` indexed on every row, as before
  the partial index (migration ``b7e3d1f9a2c5``);
- ``plain_client_fk``: ``plain`` with a foreign key from ``touch_events.client_id`` to
  ``clients``, as before migration ``d2f8a6c4e1b7`` (a check per touch, each locking the
  kiosk client's row);
- ``copy``: ``COPY … FROM STDIN``, one row per touch written by the driver;
- ``unnest``: three arrays (times, targets, ids) expanded by ``unnest``.

Rounds alternate between the shapes, so a change of the host's speed weighs on all of
them; the figure is each shape's median round. The worker's part (the driver's CPU per
batch, building its parameters included) is printed beside it.

    .venv/bin/python bench/touch_batches.py [--rounds 3] [--batches 1000]

It creates a PostgreSQL database of its own (dropped at the end), migrated as
``bench/run.py``'s is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import servers  # noqa: E402

JSON_BATCH = (
    "INSERT INTO touch_events (client_id, resident_id, occurred_at, target, event_id, "
    "received_at) SELECT %(client)s, NULL, CAST(e.value ->> 0 AS timestamptz), "
    "e.value ->> 1, e.value ->> 2, %(now)s "
    "FROM json_array_elements(CAST(%(events)s AS json)) AS e(value)")
SKIPPING = " ON CONFLICT (client_id, event_id) DO NOTHING"
UNNEST = (
    "INSERT INTO touch_events (client_id, resident_id, occurred_at, target, event_id, "
    "received_at) SELECT %(client)s, NULL, e.o, e.t, e.i, %(now)s "
    "FROM unnest(%(o)s::timestamptz[], %(t)s::text[], %(i)s::text[]) AS e(o, t, i)")
COPY = "COPY touch_events (client_id, occurred_at, target, event_id, received_at) FROM STDIN"
FULL = "ix_touch_events_resident_id_full"
CLIENT_FK = "fk_touch_events_client_id_clients_bench"
# Each shape measured on the migrated schema with this added for its rounds, and stored as.
AMENDED = {
    "plain_full_index": (f"CREATE INDEX {FULL} ON touch_events (resident_id)",
                         f"DROP INDEX {FULL}", "plain"),
    "plain_client_fk": (f"ALTER TABLE touch_events ADD CONSTRAINT {CLIENT_FK} "
                        "FOREIGN KEY (client_id) REFERENCES clients (id) NOT VALID",
                        f"ALTER TABLE touch_events DROP CONSTRAINT {CLIENT_FK}", "plain"),
}


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def store(conn: psycopg.Connection, shape: str, client: str) -> None:
    now = dt.datetime.now(dt.UTC)
    ids = [uuid.uuid4().hex for _ in range(100)]
    if shape == "copy":
        with conn.cursor().copy(COPY) as copy:
            for event_id in ids:
                copy.write_row((client, now, "map-north", event_id, now))
    elif shape == "unnest":
        conn.execute(UNNEST, {"client": client, "now": now, "o": [now] * 100,
                              "t": ["map-north"] * 100, "i": ids}, prepare=True)
    else:
        events = json.dumps([(now.isoformat(), "map-north", i) for i in ids],
                            separators=(",", ":"))
        statement = JSON_BATCH + (SKIPPING if shape == "on_conflict" else "")
        conn.execute(statement, {"client": client, "now": now, "events": events}, prepare=True)
    conn.commit()


def measure(conn: psycopg.Connection, pid: int, shape: str, client: str,
            batches: int) -> tuple[float, float]:
    """(backend CPU ms, this process's CPU ms) per batch."""
    add, drop, stored_as = AMENDED.get(shape, (None, None, shape))
    if add:
        conn.execute(add)
        conn.commit()
    try:
        began, mine = backend_cpu(pid), time.process_time()
        for _ in range(batches):
            store(conn, stored_as, client)
        return ((backend_cpu(pid) - began) * 1000 / batches,
                (time.process_time() - mine) * 1000 / batches)
    finally:
        if drop:
            conn.execute(drop)
            conn.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=1000)
    args = parser.parse_args(argv)

    from alembic import command

    from idp import create_app
    from idp.cli.db import alembic_config
    from idp.clients import service as clients
    from idp.extensions import db
    from idp.kiosk import service as kiosks

    shapes = ["on_conflict", "plain", "plain_full_index", "plain_client_fk", "copy", "unnest"]
    with servers.postgres_database(args.postgres_url) as url:
        app = create_app({"database_url": url})
        command.upgrade(alembic_config(app.extensions["idp.settings"].sqlalchemy_url), "head")
        with app.app_context():  # a kiosk as the app registers it
            kiosk, _, _ = kiosks.create_kiosk(clients.create_company("B社").id, "kiosk", "here")
            client = kiosk.id
            db.session.commit()
            db.engine.dispose()
        with psycopg.connect(url) as conn:
            pid = conn.info.backend_pid
            for shape in shapes:  # warm: plans, prepared statements, the table's pages
                measure(conn, pid, shape, client, 100)
            figures: dict[str, list[tuple[float, float]]] = {s: [] for s in shapes}
            for _ in range(args.rounds):
                for shape in shapes:
                    figures[shape].append(measure(conn, pid, shape, client, args.batches))
    print(f"{'shape':18} {'PostgreSQL ms':>14} {'worker ms':>10}   (per batch of 100; median of "
          f"{args.rounds} rounds of {args.batches})")
    for shape, rounds in figures.items():
        print(f"{shape:18} {statistics.median(r[0] for r in rounds):14.3f} "
              f"{statistics.median(r[1] for r in rounds):10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
