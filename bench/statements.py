"""What the statements of a client-credentials token cost the worker, and what the
"one statement per request" design (docs/performance.md) would save.

A token request writes two rows today: the token, and its audit entry (appended at
commit), in one transaction through the request's ORM session: BEGIN, INSERT, INSERT,
COMMIT. The design named as the next step folds both rows into one statement (a CTE),
and runs it outside a transaction (autocommit). This measures the three shapes on the
same PostgreSQL, in one process, with rows as wide as ours, and prints the CPU time the
Python process spends per request on each (``time.process_time``: what a worker pays,
whatever else the machine does) and the wall time (the round trips).

    .venv/bin/python bench/statements.py [postgresql+psycopg://postgres@127.0.0.1:5432/test]

It works in a schema of its own (``bench_statements``), dropped at the end.
"""

from __future__ import annotations

import json
import secrets
import sys
import time

from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.orm import Session

URL = sys.argv[1] if len(sys.argv) > 1 else "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_statements"  # also spelled out in the statements below
ROUNDS = 3000
WARMUP = 300

SETUP = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.tokens (id bigserial PRIMARY KEY, client_id text, scope text,
    grant_type text, access_token_digest text UNIQUE, family_id text,
    issued_at timestamptz, access_expires_at timestamptz);
CREATE TABLE {SCHEMA}.audit (id bigserial PRIMARY KEY, tag text, at timestamptz,
    client_id text, company_id text, ip text, user_agent text, data jsonb,
    personal_salt text, personal_digest text, xid bigint);
"""
TOKEN = text("""INSERT INTO bench_statements.tokens (client_id, scope, grant_type,
    access_token_digest, family_id, issued_at, access_expires_at)
    VALUES (:client_id, :scope, 'client_credentials', :digest, :family, now(),
            now() + interval '1 hour') RETURNING id""")
AUDIT = text("""INSERT INTO bench_statements.audit (tag, at, client_id, company_id, ip, user_agent,
    data, personal_salt, personal_digest, xid)
    VALUES ('oauth:token:issue', now(), :client_id, :company_id, '127.0.0.1', 'wrk',
            CAST(:data AS jsonb), :salt, :pdigest, pg_current_xact_id()::text::bigint)""")
BOTH = text("""WITH t AS (INSERT INTO bench_statements.tokens (client_id, scope, grant_type,
    access_token_digest, family_id, issued_at, access_expires_at)
    VALUES (:client_id, :scope, 'client_credentials', :digest, :family, now(),
            now() + interval '1 hour') RETURNING id)
  INSERT INTO bench_statements.audit (tag, at, client_id, company_id, ip, user_agent, data,
    personal_salt, personal_digest, xid)
  SELECT 'oauth:token:issue', now(), :client_id, :company_id, '127.0.0.1', 'wrk',
         CAST(:data AS jsonb) || jsonb_build_object('token_id', t.id), :salt, :pdigest,
         pg_current_xact_id()::text::bigint FROM t
  RETURNING (SELECT id FROM t)""")


def values() -> dict:
    return {"client_id": "mc_BENCH", "company_id": "co_BENCH", "scope": "touch_events",
            "digest": secrets.token_hex(32), "family": secrets.token_urlsafe(24),
            "salt": secrets.token_hex(16), "pdigest": secrets.token_hex(32),
            "data": json.dumps({"grant_type": "client_credentials", "scope": "touch_events",
                                "family": "x", "refresh_token": False})}


def main() -> int:
    engine = create_engine(URL)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.begin() as connection:
        connection.exec_driver_sql(SETUP)

    def today() -> None:  # BEGIN, token INSERT, audit INSERT, COMMIT
        v = values()
        with Session(engine) as session:
            token_id = session.execute(TOKEN, v).scalar_one()
            session.execute(AUDIT, {**v, "data": json.dumps({**json.loads(v["data"]),
                                                             "token_id": token_id})})
            session.commit()

    def one_statement() -> None:  # BEGIN, the CTE, COMMIT
        with Session(engine) as session:
            session.execute(BOTH, values()).scalar_one()
            session.commit()

    def one_statement_autocommit() -> None:  # the CTE alone
        with Session(autocommit) as session:
            session.execute(BOTH, values()).scalar_one()
            session.commit()

    shapes = (today, one_statement, one_statement_autocommit)
    results: dict[str, list[tuple[float, float]]] = {shape.__name__: [] for shape in shapes}
    try:
        for _ in range(2):  # two alternating rounds: drift shows as a gap between them
            for shape in shapes:
                for _ in range(WARMUP):
                    shape()
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(ROUNDS):
                    shape()
                results[shape.__name__].append(
                    (1e3 * (time.process_time() - cpu) / ROUNDS,
                     1e3 * (time.perf_counter() - wall) / ROUNDS))
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        engine.dispose()
    base = sum(cpu for cpu, _ in results["today"]) / 2
    print(f"{'shape':28} {'client CPU ms':>14} {'wall ms':>9} {'CPU saved':>10}   "
          f"({ROUNDS} requests per round, 2 rounds)")
    for name, rounds in results.items():
        cpu = sum(c for c, _ in rounds) / len(rounds)
        wall = sum(w for _, w in rounds) / len(rounds)
        print(f"{name:28} {cpu:14.3f} {wall:9.3f} {base - cpu:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
