"""OpenAPI 3.1 description of the JSON APIs, served at /openapi.json.

Covers the touch-event, sensor-count and registered-data APIs (docs/data-exchange.md),
the transparency list and the OAuth/OIDC endpoints that answer JSON, so member companies,
kiosk and sensor vendors and the city's open-data portal can generate clients and CI can
fuzz them with schemathesis.
"""

from __future__ import annotations

from typing import Any

from idp.config import Settings
from idp.sensors import service as sensors

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "error_uri": {"type": "string"},
        "field": {"type": "string"},
    },
}

TOKEN = {
    "type": "object",
    "required": ["access_token", "token_type"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer"},
        "refresh_token": {"type": "string"},
        "id_token": {"type": "string"},
        "scope": {"type": "string"},
    },
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _form(properties: dict, required: list[str]) -> dict:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "properties": properties, "required": required}}}}


def _client_post(operation_id: str, summary: str, fields: list[str], required: list[str],
                 ok: dict) -> dict:
    """A form POST by an authenticated client (client_secret_basic): string fields, the
    200 answer ``ok``, and the 400 and 401 errors."""
    return {"post": {
        "operationId": operation_id,
        "summary": summary,
        "security": [{"clientBasic": []}],
        "requestBody": _form({name: {"type": "string"} for name in fields}, required),
        "responses": {"200": ok, **_errors(400, 401)},
    }}


def _errors(*codes: int) -> dict:
    return {str(code): _json({"$ref": "#/components/schemas/Error"}, "OAuth error")
            for code in codes}


def document(settings: Settings) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Machi ID JSON APIs", "version": "1.0.0",
                 "description": "Touch events for signage kiosks, counts from people-counting "
                                "sensors, the public list of devices (transparency) and the "
                                "OAuth 2.0 / OpenID Connect endpoints that answer JSON. See "
                                "docs/endpoints.md."},
        "servers": [{"url": settings.issuer}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "clientBasic": {"type": "http", "scheme": "basic",
                                "description": "client_secret_basic"},
            },
            "schemas": {"Error": ERROR, "Token": TOKEN},
        },
        "paths": {
            "/api/touch-events": {"post": {
                "operationId": "storeTouchEvents",
                "summary": "Log touch events (all or nothing; idempotent per event_id)",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["events"], "additionalProperties": False,
                    "properties": {"events": {
                        "type": "array", "minItems": 1,
                        "maxItems": settings.touch_events_max_batch,
                        "items": {"type": "object", "required": ["occurred_at", "target"],
                                  "additionalProperties": False,
                                  "properties": {
                                      "occurred_at": {"type": "string", "format": "date-time"},
                                      "target": {"type": "string", "minLength": 1,
                                                 "maxLength": 200},
                                      "event_id": {"type": "string", "minLength": 1,
                                                   "maxLength": 100}}}}}}}}},
                "responses": {
                    "201": _json({"type": "object", "required": ["stored", "duplicates"],
                                  "properties": {"stored": {"type": "integer"},
                                                 "duplicates": {"type": "integer"}}},
                                 "Stored"),
                    **_errors(400, 401, 403),
                },
            }},
            "/api/registered-data": {"post": {
                "operationId": "contributeRegisteredData",
                "summary": "Contribute registered data about residents the company serves "
                           "(all or nothing; idempotent per record_id). A client_credentials "
                           "token with contribute:<category> for each category; the resident "
                           "is named by the company's own pairwise sub.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["records"], "additionalProperties": False,
                    "properties": {"records": {
                        "type": "array", "minItems": 1,
                        "maxItems": settings.registered_data_max_batch,
                        "items": {"type": "object",
                                  "required": ["sub", "category", "value", "record_id",
                                               "collected_at"],
                                  "additionalProperties": False,
                                  "properties": {
                                      "sub": {"type": "string", "minLength": 1,
                                              "maxLength": 64},
                                      "category": {"type": "string",
                                                   "pattern": "^[a-z][a-z0-9_]{1,39}$"},
                                      "value": {"description": "Valid against the category's "
                                                               "JSON Schema (idp categories "
                                                               "list)"},
                                      "record_id": {"type": "string", "minLength": 1,
                                                    "maxLength": 100},
                                      "collected_at": {"type": "string",
                                                       "format": "date-time"}}}}}}}}},
                "responses": {
                    "201": _json({"type": "object", "required": ["stored", "duplicates"],
                                  "properties": {"stored": {"type": "integer"},
                                                 "duplicates": {"type": "integer"}}},
                                 "Stored"),
                    **_errors(400, 401, 403, 409),
                },
            }},
            "/api/registered-data/{record_id}": {"delete": {
                "operationId": "withdrawRegisteredData",
                "summary": "Delete one of the company's records by its record_id",
                "security": [{"bearer": []}],
                "parameters": [{"name": "record_id", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1,
                                           "maxLength": 100}}],
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
            }},
            "/api/sensor-counts": {"post": {
                "operationId": "storeSensorCounts",
                "summary": "Post people counts per interval and direction (all or nothing; "
                           "a resend of a sensor + interval_start + direction replaces it). "
                           "No identity is accepted.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["counts"], "additionalProperties": False,
                    "properties": {"counts": {
                        "type": "array", "minItems": 1, "maxItems": sensors.MAX_BATCH,
                        "items": {"type": "object", "additionalProperties": False,
                                  "required": ["interval_start", "interval_seconds",
                                               "direction", "count"],
                                  "properties": {
                                      "interval_start": {"type": "string",
                                                         "format": "date-time"},
                                      "interval_seconds": {"type": "integer", "minimum": 1,
                                                           "maximum": sensors.MAX_INTERVAL},
                                      "direction": {"type": "string",
                                                    "enum": list(sensors.DIRECTIONS)},
                                      "count": {"type": "integer", "minimum": 0,
                                                "maximum": sensors.MAX_COUNT}}}}}}}}},
                "responses": {
                    "201": _json({"type": "object", "required": ["stored", "replaced"],
                                  "properties": {"stored": {"type": "integer"},
                                                 "replaced": {"type": "integer"}}},
                                 "Stored (new) and replaced (resent) counts"),
                    **_errors(400, 401, 403),
                },
            }},
            "/transparency.json": {"get": {
                "operationId": "transparency",
                "summary": "Every kiosk and sensor in service: company, place, what it records, "
                           "purpose, retention, contact (ja and en); public",
                "responses": {"200": _json({"type": "object", "required": ["devices"],
                                            "properties": {"devices": {
                                                "type": "array", "items": {
                                                    "type": "object",
                                                    "required": ["kind", "id", "name",
                                                                 "company", "location"]}}}},
                                           "Devices")},
            }},
            "/token": _client_post(
                "token", "Token endpoint (authorization_code, refresh_token, "
                         "client_credentials, device_code)",
                ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token",
                 "scope", "device_code", "client_id"], ["grant_type"],
                _json({"$ref": "#/components/schemas/Token"}, "Tokens")),
            "/introspect": _client_post(
                "introspect", "RFC 7662 token introspection",
                ["token", "token_type_hint"], ["token"],
                _json({"type": "object", "required": ["active"],
                       "properties": {"active": {"type": "boolean"}}}, "Introspection")),
            "/revoke": _client_post(
                "revoke", "RFC 7009 token revocation",
                ["token", "token_type_hint"], ["token"],
                _json({"type": "object"}, "Revoked (or unknown)")),
            "/device_authorization": _client_post(
                "deviceAuthorization", "RFC 8628 device authorization",
                ["scope", "client_id"], [],
                _json({"type": "object", "required": [
                    "device_code", "user_code", "verification_uri",
                    "verification_uri_complete", "expires_in", "interval"]}, "Codes")),
            "/userinfo": {"get": {
                "operationId": "userinfo",
                "summary": "OIDC UserInfo: consented claims",
                "security": [{"bearer": []}],
                "responses": {"200": _json({"type": "object", "required": ["sub"]}, "Claims"),
                              **_errors(401, 403)},
            }},
            "/.well-known/openid-configuration": {"get": {
                "operationId": "discovery",
                "summary": "OpenID Provider metadata",
                "responses": {"200": _json({"type": "object", "required": ["issuer"]},
                                           "Metadata")},
            }},
            "/.well-known/ssf-configuration": {"get": {
                "operationId": "ssfConfiguration",
                "summary": "Shared Signals Framework transmitter metadata (security events)",
                "responses": {"200": _json({"type": "object", "required": ["issuer"],
                                            "properties": {
                                                "spec_version": {"type": "string"},
                                                "issuer": {"type": "string"},
                                                "jwks_uri": {"type": "string"},
                                                "delivery_methods_supported": {
                                                    "type": "array",
                                                    "items": {"type": "string"}}}},
                                           "Transmitter metadata")},
            }},
            "/jwks.json": {"get": {
                "operationId": "jwks",
                "summary": "Signing keys",
                "responses": {"200": _json({"type": "object", "required": ["keys"]}, "JWKS")},
            }},
        },
    }
