"""Audit event tags, ``source:subject:action`` (warehouse events/tags.py style)."""

from __future__ import annotations

import enum


class AuditTag(enum.StrEnum):
    LOGIN_SUCCESS = "resident:login:success"
    LOGIN_FAILURE = "resident:login:failure"
    LOGOUT = "resident:session:end"
    RESIDENT_CREATE = "resident:account:create"
    CONSENT_GRANT = "consent:grant"
    CONSENT_CHANGE = "consent:change"
    CONSENT_DENY = "consent:deny"
    CODE_ISSUE = "oauth:code:issue"
    CODE_REPLAY = "oauth:code:replay"
    TOKEN_ISSUE = "oauth:token:issue"  # noqa: S105
    TOKEN_REFRESH = "oauth:token:refresh"  # noqa: S105
    TOKEN_REVOKE = "oauth:token:revoke"  # noqa: S105
    REFRESH_REUSE = "oauth:refresh:reuse"
    CLAIMS_RELEASE = "oauth:claims:release"
    DEVICE_APPROVE = "device:approve"
    DEVICE_DENY = "device:deny"
    USER_CODE_FAILURE = "device:user_code:failure"
    TOUCH_EVENTS = "kiosk:touch_events:store"
    KIOSK_CREATE = "kiosk:create"
    COMPANY_CREATE = "company:create"
    COMPANY_SUSPEND = "company:suspend"
    CLIENT_CREATE = "client:create"
    CLIENT_REVOKE = "client:revoke"
    KEY_ROTATE = "key:rotate"
