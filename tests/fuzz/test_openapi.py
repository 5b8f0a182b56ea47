"""Property-based fuzzing of the JSON APIs from their OpenAPI document (schemathesis).

Thousands of generated and mutated requests: never a 5xx, every answer of a
documented status with a documented body, and never a token for a bad request.
"""

from __future__ import annotations

import contextvars
import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance
from schemathesis.checks import not_a_server_error
from schemathesis.checks import response_schema_conformance
from schemathesis.checks import status_code_conformance
from sqlalchemy import func
from sqlalchemy import select

from idp.access.models import Token
from idp.db import utcnow
from idp.exchange import categories
from idp.exchange import contracts
from idp.extensions import db
from idp.kiosk import service as kiosks
from idp.sensors import service as sensors
from tests import factories

OPERATIONS = ["GET /.well-known/openid-configuration", "POST /api/touch-events",
              "POST /api/sensor-counts", "GET /transparency.json",
              "POST /api/registered-data", "DELETE /api/registered-data/{record_id}",
              "POST /device_authorization", "POST /introspect", "GET /jwks.json",
              "POST /revoke", "POST /token", "GET /userinfo"]
EXAMPLES = 250
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def credentials(app, client):
    factories.resident()
    company = factories.company("C社")
    kiosk, secret, _ = kiosks.create_kiosk(company, "サイネージ", "北2条広場")
    kiosk_id = kiosk.id
    db.session.commit()
    sensor, sensor_secret, _ = sensors.create_sensor(
        company, "人流センサー", sensors.Placement("北2条広場", 43.063, 141.354))
    sensor_id = sensor.id
    db.session.commit()
    token = client.post("/token", data={"grant_type": "client_credentials",
                                        "scope": "touch_events"},
                        auth=(kiosk_id, secret)).json["access_token"]
    sensor_token = client.post("/token", data={"grant_type": "client_credentials",
                                               "scope": "sensor_counts"},
                               auth=(sensor_id, sensor_secret)).json["access_token"]
    # A member company's backend, contributing every default category under a contract.
    categories.ensure_defaults()
    keys = [c.key for c in categories.in_use()]
    contracts.create(company, keys, "登録データの提供",
                     valid_until=(utcnow() + dt.timedelta(days=365)).date())
    db.session.commit()
    contributor = factories.rp(company, scopes=["openid", *(f"contribute:{k}" for k in keys)],
                               grant_types=["client_credentials"], redirect_uris=[])
    contributor_token = client.post(
        "/token", data={"grant_type": "client_credentials",
                        "scope": " ".join(f"contribute:{k}" for k in keys)},
        auth=(contributor.client_id, contributor.client_secret)).json["access_token"]
    db.session.rollback()
    return {"bearer": token, "basic": (kiosk_id, secret),
            "bearer_for": {"POST /api/sensor-counts": sensor_token,
                           "POST /api/registered-data": contributor_token,
                           "DELETE /api/registered-data/{record_id}": contributor_token}}


# Operations without parameters or body have no malformed variant.
PAIRS = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label in OPERATIONS
    if label.startswith(("POST", "DELETE"))]


@pytest.mark.parametrize(("label", "mode"), PAIRS, ids=[f"{lb}-{m.value}" for lb, m in PAIRS])
def test_api_never_fails_on_generated_input(app, credentials, label, mode):
    """Test that generated and malformed requests get documented, non-5xx answers."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().label == label)
    security = operation.definition.raw.get("security") or [{}]
    scheme = next(iter(security[0]), None)
    tokens_before = db.session.scalar(select(func.count()).select_from(Token))
    issued = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        kwargs = {}
        if scheme == "bearer":
            bearer = credentials["bearer_for"].get(label, credentials["bearer"])
            kwargs["headers"] = {"Authorization": f"Bearer {bearer}"}
        elif scheme == "clientBasic":
            kwargs["auth"] = credentials["basic"]
        db.session.rollback()
        # Outside the test's app context, as a real request would be.
        response = contextvars.Context().run(case.call, **kwargs)
        checks = CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]
        case.validate_response(response, checks=checks)
        assert response.status_code < 500
        if label == "POST /token" and response.status_code == 200:
            issued.append((case.body or {}).get("grant_type"))

    run()
    # The only grant a generated request can legitimately complete is the kiosk's
    # own client_credentials; a generated code, refresh or device code never works.
    assert set(issued) <= {"client_credentials"}
    db.session.rollback()
    tokens_after = db.session.scalar(select(func.count()).select_from(Token))
    assert tokens_after - tokens_before == len(issued)

